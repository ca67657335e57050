"""Fault 3: a stage that cannot write its output (disk full, read-only folder) fails with one line
``lotlip <stage>: error: cannot write <file>: <cause>`` (exit status 2, no traceback), leaves no partial output and
no temp files, and Snakemake's state stays consistent (only the failed stage is planned again; a rerun builds it).

"Disk full" is simulated with ``RLIMIT_FSIZE``: writes past the limit fail with EFBIG, for root too (chmod does not
stop root). "Read-only" is a folder without write permission, or, as root, an output whose parent is a file; as
root the stages also run once more as the unprivileged user ``nobody`` against a real read-only folder (root
ignores file modes, so only then is the permission check itself exercised).
Every stage runs through the ``lotlip`` command line in one subprocess per user (``tests.faults._inject
--stages``: one import, a limit per stage); download is ``lotlip fetch-model``, extract ``lotlip fetch`` of a
catalog whose archive downloads fine but cannot be unpacked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from lotlip.config import to_dict
from lotlip.world.build import build_benchmark
from tests.conftest import REPO, planned_jobs
from tests.faults.conftest import env_with_bin, file_size_limit, snakemake, temp_leftovers, tiny_run, train_args

ROOT = os.geteuid() == 0
PAYLOAD = os.urandom(300_000)
TINY_LIMIT, BIG_LIMIT = 64, 1 << 20  # bytes: below every output / above log.csv, below a checkpoint
FETCH_LIMIT = 64_000  # below the downloaded file and the unpacked member, above the (compressed) archive


def _stage_argvs(tiny_cfg, world, captions, shards, model, bench, evals, out: Path) -> dict[str, tuple[list, Path]]:
    """name -> (lotlip argv writing under ``out``, the output it would write)."""
    world_cfg = {"world": to_dict(tiny_cfg.world)}
    bench_cfg = {**world_cfg, "benchmarks": {"dci_syn": {"n_groups": 2, "group_size": 3}}}
    run = tiny_run(tiny_cfg, steps=2, checkpoint_every=1, batch_size=8)
    outs = {"images": out / "images", "benchmark": out / "bench", "relabel": out / "captions.jsonl",
            "shards": out / "shards", "train": out / "run" / "model.pt", "evaluate": out / "eval.json",
            "report": out / "table.csv", "stats": out / "stats.csv"}
    argvs = {
        "images": ["images", "--cfg", json.dumps(world_cfg), "--out", str(outs["images"])],
        "benchmark": ["synthetic-benchmark", "--cfg", json.dumps(bench_cfg), "--name", "dci_syn", "--out",
                      str(outs["benchmark"])],
        "relabel": ["relabel", "--cfg", "{}", "--images", str(world), "--out", str(outs["relabel"])],
        "shards": ["shards", "--cfg", json.dumps({"shards": {"samples_per_shard": 40}}), "--images", str(world),
                   "--captions", str(captions), "--out", str(outs["shards"])],
        "train": train_args(run, shards, outs["train"]),
        "evaluate": ["evaluate", "--cfg", json.dumps({"train": {"threads": 1}}), "--run", "lotlip", "--name",
                     "dci_syn", "--checkpoint", str(model), "--benchmark", str(bench), "--out", str(outs["evaluate"])],
        "report": ["report", "--table", "long_retrieval", "--out", str(outs["report"]), str(evals)],
        "stats": ["stats", "--cfg", "{}", "--images", str(world), "--captions", str(captions), "--out",
                  str(outs["stats"]), str(bench)],
    }
    return {name: (argvs[name], outs[name]) for name in argvs}


def _archive(path: Path) -> Path:
    """A small .tar.gz whose one member unpacks to 300 kB (above ``FETCH_LIMIT``)."""
    data = bytes(300_000)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _fetch_argvs(served, archive: Path, base: Path, fetch_root: Path, extract_to: Path) -> dict[str, tuple[list, Path]]:
    """The download and extract stages: ``lotlip fetch-model`` writing under ``base`` and ``lotlip fetch`` of a
    one-archive catalog dataset under ``fetch_root`` (writable: the archive is downloaded) unpacked to
    ``extract_to``."""
    catalog = fetch_root.parent / f"{fetch_root.name}.catalog.yaml"
    catalog.write_text(yaml.safe_dump({"datasets": {"demo": {"loader": "load_dci", "files": [
        {"url": served.add(archive.name, archive.read_bytes()), "size": archive.stat().st_size,
         "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
         "extract_to": str(extract_to.relative_to(fetch_root))}]}}}))
    download = base / "data" / "file.bin"
    return {"download": (["fetch-model", "--url", served.add("file.bin", PAYLOAD), "--out", str(download)], download),
            "extract": (["fetch", "--dataset", "demo", "--root", str(fetch_root), "--catalog", str(catalog), "--out",
                         str(fetch_root / ".fetched" / "demo.json")], extract_to)}


def _blocked(folder: Path) -> Path:
    """A place where nothing can be created: a read-only folder, or (root ignores modes) below a regular file."""
    folder.mkdir(parents=True)
    if ROOT:
        (folder / "blocker").write_text("a file, not a folder")
        return folder / "blocker"
    folder.chmod(0o555)
    return folder


STAGES = ["images", "benchmark", "relabel", "shards", "train", "evaluate", "report", "stats", "download", "extract"]
COMMANDS = {"benchmark": "synthetic-benchmark", "download": "fetch-model", "extract": "fetch"}  # else the stage


LIMITS = {"train": BIG_LIMIT, "download": FETCH_LIMIT, "extract": FETCH_LIMIT}  # on a full disk; else TINY_LIMIT


@pytest.fixture(scope="module")
def stages(tiny_cfg, tiny_world, reference_model, served, tmp_path_factory):
    """``stages(base, fetch_root, extract_to)``: stage name -> (argv, output) of every stage writing under
    ``base`` (download), ``fetch_root`` and ``extract_to`` (extract); the inputs' folder (``prepare`` of
    :func:`stage_results` writes the evaluation JSON the report stage reads)."""
    world, captions, shards = tiny_world
    tmp = tmp_path_factory.mktemp("writefail")
    bench = tmp / "inputs" / "bench"
    build_benchmark(tiny_cfg.benchmarks["dci_syn"], tiny_cfg.world, bench)
    archive = _archive(tmp / "inputs" / "pack.tar.gz")
    inputs = (tiny_cfg, world, captions, shards, reference_model, bench, tmp / "inputs" / "eval.json")

    def make(base: Path, fetch_root: Path, extract_to: Path) -> dict[str, tuple[list, Path]]:
        return {**_stage_argvs(*inputs, base), **_fetch_argvs(served, archive, base, fetch_root, extract_to)}

    return make, tmp


@pytest.fixture(scope="module")
def stage_results(stages):
    """Every stage once against a full disk and once against a read-only folder (one subprocess)."""
    make, tmp = stages
    prep = make(tmp / "inputs", tmp / "unused", tmp / "unused")["evaluate"][0]  # the report stage reads its result
    spec = {"prepare": {"argv": prep[: prep.index("--out") + 1] + [str(tmp / "inputs" / "eval.json")],
                        "limit": None}}
    outputs = {}
    for kind, base in (("full", tmp / "full"), ("readonly", _blocked(tmp / "readonly"))):
        fetch_root = tmp / f"{kind}-fetch"  # writable: the archive downloads; the folder it unpacks in is blocked
        extract_to = _blocked(fetch_root / "ro") / "pack" if kind == "readonly" else fetch_root / "pack"
        for name, (argv, out) in make(base, fetch_root, extract_to).items():
            spec[f"{kind}-{name}"] = {"argv": argv, "limit": LIMITS.get(name, TINY_LIMIT) if kind == "full" else None}
            outputs[f"{kind}-{name}"] = out
    return spec, outputs, tmp


def _run_stages(spec: dict, folder: Path, *prefix: str, env: dict | None = None) -> dict:
    """``tests.faults._inject --stages`` over ``spec`` (files in ``folder``), run under ``prefix`` if given."""
    (folder / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([*prefix, sys.executable, "-m", "tests.faults._inject", "--stages",
                           str(folder / "spec.json"), str(folder / "results.json")], cwd=REPO,
                          env=env or env_with_bin(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def ran(stage_results):
    spec, outputs, tmp = stage_results
    try:
        results = _run_stages(spec, tmp)
    finally:
        if not ROOT:
            for folder in (tmp / "readonly", tmp / "readonly-fetch" / "ro"):
                folder.chmod(0o755)
    assert results["prepare"]["rc"] == 0, results["prepare"]
    return results, outputs, tmp / "readonly" / ("blocker" if ROOT else "")


def _error_line(result: dict, stage: str) -> str:
    """The stage's one error line: it exited 2 (an exception escaping main would be a traceback, ``rc`` 1),
    and its stderr holds exactly one ``lotlip <command>: error: cannot write`` line, the last one (progress bars
    may come first), and no traceback."""
    assert result["rc"] == 2, result
    lines = result["error"].splitlines()
    errors = [line for line in lines if line.startswith("lotlip ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result
    assert errors[0].startswith(f"lotlip {COMMANDS.get(stage, stage)}: error: cannot write "), result
    assert "Traceback" not in result["error"], result
    return errors[0]


@pytest.mark.parametrize("stage", STAGES)
def test_full_disk_fails_the_stage_and_leaves_nothing(ran, stage):
    results, outputs, _ = ran
    result, out = results[f"full-{stage}"], outputs[f"full-{stage}"]
    assert result["rc"] != 0, f"{stage} succeeded on a full disk"
    assert not out.exists(), f"partial output {out}"
    assert temp_leftovers(out.parent) == []
    if stage == "train":
        assert not list(out.parent.glob("*.pt")), "a checkpoint was published"  # logs may remain
    if stage == "download":
        assert {p.name for p in out.parent.iterdir()} <= {"file.bin.part"}  # the resume state of a download
    if stage == "extract":
        assert not (out.parent / ".fetched").exists()  # no marker: the rule is not complete


@pytest.mark.parametrize("stage", STAGES)
def test_full_disk_error_is_one_line_naming_the_file_and_cause(ran, stage):
    results, outputs, _ = ran
    error = _error_line(results[f"full-{stage}"], stage)
    assert ": File too large" in error or ": No space left" in error, error  # EFBIG here, ENOSPC on a real disk
    out = outputs[f"full-{stage}"]
    named = out.parent / "last.pt" if stage == "train" else out  # training fails at its first checkpoint
    assert f"cannot write {named}" in error, error  # download: the part file beside the output
    if stage == "download":
        assert "giving up" not in error, error  # a local write error is not retried


@pytest.mark.parametrize("stage", STAGES)
def test_read_only_folder_fails_the_stage_naming_the_path(ran, stage):
    results, outputs, blocked = ran
    result, out = results[f"readonly-{stage}"], outputs[f"readonly-{stage}"]
    assert result["rc"] != 0, f"{stage} succeeded in a read-only folder"
    error = _error_line(result, stage)
    reasons = ("Not a directory", "File exists") if ROOT else ("Permission denied",)
    assert any(f": {r}" in error for r in reasons), error
    assert f"cannot write {out}" in error, error  # the output, inside the blocked folder
    assert not out.exists()
    if stage != "extract":
        assert str(blocked) in error, error


@pytest.fixture(scope="module")
def ran_unprivileged(ran, stages, tmp_path_factory):
    """The read-only cases again as ``nobody`` (root ignores file modes): every stage in one subprocess, its
    output in a folder of mode 0555 (download and extract: the folder the file is downloaded or unpacked in).

    ``setpriv`` (util-linux) switches user and group and drops every capability but CAP_DAC_READ_SEARCH (read any
    file, enter any folder), kept so that the process can run this interpreter (installed under /root, mode 0700,
    here) and read the inputs in pytest's temp folder; writing still needs the folder's permission, which is what
    is tested.
    """
    if not ROOT:
        pytest.skip("dropping privileges needs root; as a non-root user the read-only cases above already run "
                    "unprivileged, against a folder with mode 0555")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not found: cannot run the stages as an unprivileged user")
    user = pwd.getpwnam("nobody")
    make, _ = stages
    home = tmp_path_factory.mktemp("nobody")
    readonly, fetch_root, results = home / "readonly", home / "fetch", home / "results"
    for folder in (readonly, fetch_root / "ro", results, home / "home"):
        folder.mkdir(parents=True)
    argvs = make(readonly, fetch_root, fetch_root / "ro" / "pack")
    for folder in (fetch_root, fetch_root / "ro", readonly, results, home / "home"):
        os.chown(folder, user.pw_uid, user.pw_gid)
    for folder in (readonly, fetch_root / "ro"):
        folder.chmod(0o555)  # read-only, for its owner too
    prefix = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
              "--inh-caps=-all,+dac_read_search", "--ambient-caps=-all,+dac_read_search",
              "--bounding-set=-all,+dac_read_search", "--no-new-privs", "--"]
    done = _run_stages({name: {"argv": argv, "limit": None} for name, (argv, _) in argvs.items()}, results, *prefix,
                       env=env_with_bin(HOME=str(home / "home")))
    return done, {name: out for name, (_, out) in argvs.items()}, (readonly, fetch_root / "ro")


@pytest.mark.parametrize("stage", STAGES)
def test_read_only_folder_as_unprivileged_user(ran_unprivileged, stage):
    results, outputs, folders = ran_unprivileged
    result, out = results[stage], outputs[stage]
    error = _error_line(result, stage)
    assert f"cannot write {out}: Permission denied" in error, error  # (and the folder, if not the output's own)
    assert not out.exists()
    assert [list(folder.iterdir()) for folder in folders] == [[], []]  # no partial output, no temp file


def test_failed_stage_leaves_snakemake_consistent(tiny_world, tmp_path):
    """Through the workflow: the shards rule hits a full disk; its log ends with the one error line, its output and
    temp folder are gone and Snakemake plans exactly that rule again (no incomplete-file complaint)."""
    world, captions, _ = tiny_world
    work = tmp_path / "work"
    shutil.copytree(world, work / "resources" / "images" / "train")
    (work / "results" / "captions").mkdir(parents=True)
    shutil.copy(captions, work / "results" / "captions" / "train.jsonl")
    until = ("all", "--until", "shards")
    failed = snakemake(work, *until, preexec_fn=file_size_limit(48 * 1024))
    assert failed.returncode != 0
    assert "Error in rule shards" in failed.stderr, failed.stderr[-3000:]
    log = (work / "logs" / "shards.log").read_text()  # the stage's stderr: one line, not a traceback
    last = log.strip().splitlines()[-1]
    assert last.startswith("lotlip shards: error: cannot write results/shards/train") and "File too large" in last, log
    assert "Traceback" not in log, log
    leftovers = [p for p in (work / "results").rglob("*") if p.name.startswith(".") or "shards" in p.parts]
    assert leftovers == [], leftovers
    plan = snakemake(work, *until, "-n")  # exactly the failed stage again, no incomplete-file complaint
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_jobs(plan.stdout + plan.stderr) == {"shards": 1}
