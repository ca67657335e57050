"""bench/model_bench.py runs end to end in its --quick mode and writes the expected results (no timing asserts)."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_quick_bench_writes_results(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "model_bench.py"), "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "quick"
    assert {"torch", "git_commit", "cpu", "torch_threads"} <= results["machine"].keys()
    overhead = results["corner_overhead"]
    assert {"overhead_pct", "overhead_pct_min_times", "flop_overhead_pct", "corner_work_overhead_pct", "corners_0",
            "corners_2"} <= overhead.keys()
    assert len(overhead["corners_2"]["times_s"]) == overhead["timed_rounds"] >= results["settings"]["min_rounds"]
    assert overhead["corners_0"]["step_gflops"] > 0
    rows = results["text_cost"]["rows"]
    assert [r["context"] for r in rows] == results["settings"]["contexts"]
    assert all(r["gflops_per_text"] > 0 and r["encode_s"] > 0 for r in rows)
    assert rows[-1]["gflops_per_text"] > rows[0]["gflops_per_text"]  # longer context, more FLOPs
    assert "Corner-token training overhead" in (tmp_path / "results.md").read_text()
