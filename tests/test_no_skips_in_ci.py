"""``LOTLIP_NO_SKIPS=1`` (what ``.ci/run`` sets) turns skipped tests into failures; without it a skip is a skip."""

from __future__ import annotations

import os
import sys

import pytest

from tests.conftest import REPO, run_child

PROBE = '''
import pytest

@pytest.mark.skipif(True, reason="probe: no cluster")
def test_marked():
    pass

def test_at_run_time():
    pytest.skip("probe: tool missing")
'''


@pytest.mark.parametrize("no_skips", ["1", ""])
def test_ci_turns_skips_into_failures(tmp_path, no_skips):
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "LOTLIP_NO_SKIPS": no_skips}
    done = run_child([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
                      "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
                     cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if no_skips:
        assert done.returncode == 1, done.stdout
        assert done.stdout.count("forbids skips") >= 2 and "probe: no cluster" in done.stdout, done.stdout
    else:
        assert done.returncode == 0 and "2 skipped" in done.stdout, done.stdout
