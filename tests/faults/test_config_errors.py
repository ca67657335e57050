"""Fault 5: a bad configuration (unknown key, wrong type, out-of-range value, missing file) stops with one line
naming the key or the path: in the workflow before anything is planned, in ``lotlip check-config`` and in every
stage's JSON arguments.

``tests/config/test_config.py`` checks ``load_config`` message by message; here each bad input goes through the entry
points a user meets.
"""

from __future__ import annotations

import json

import pytest

from lotlip.cli import main
from tests.conftest import REPO, planned_jobs, run_child
from tests.faults.conftest import BIN, env_with_bin, snakemake, snakemake_cmd

# (YAML written to a config file, the fragment the one line must contain)
WORKFLOW_CASES = {
    "unknown-nested-key": ("experiments:\n  lotlip:\n    cornr_tokens: 2\n",
                           "unknown key 'experiments.lotlip.cornr_tokens'"),
    "wrong-type": ("world:\n  n_train: many\n", "key 'world.n_train'"),
    "out-of-range": ("sampling:\n  max_caption_chars: 0\n", "sampling.max_caption_chars: 0 is below the minimum 1"),
    "missing-model-file": ("train:\n  model: /nonexistent/lotlip-tiny.json\n",
                           "train.model: '/nonexistent/lotlip-tiny.json' is neither"),
}


@pytest.mark.parametrize("case", WORKFLOW_CASES)
def test_workflow_stops_before_planning_with_one_line(case, tmp_path):
    text, expected = WORKFLOW_CASES[case]
    (tmp_path / "bad.yaml").write_text(text)
    done = snakemake(tmp_path / "work", "all", "-n", configfiles=(str(tmp_path / "bad.yaml"),), timeout=120)
    err = done.stderr.strip()
    assert done.returncode != 0
    assert err.startswith("lotlip: config error: ") and "\n" not in err, err[-2000:]
    assert expected in err
    assert not (tmp_path / "work" / "results").exists()


# A config file given with --configfile that Snakemake cannot read -> the fragment the one line must contain
FILE_ERRORS = {
    "missing": (None, "config file not found"),
    "not-utf8": ("train:\n  model: caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 19)"),
    "invalid-yaml": ("train: [1, 2\n", "not valid YAML at line 2"),
    "empty": ("", "must map keys to values at the top level, got nothing"),
}


@pytest.mark.parametrize("case", FILE_ERRORS)
def test_lotlip_snakemake_names_a_bad_config_file_in_one_line(case, tmp_path):
    """``lotlip snakemake`` (the README's way to pass --configfile): one line naming the file, no traceback, before
    Snakemake reads the file. Plain ``snakemake`` cannot: it reads --configfile before the workflow runs."""
    content, expected = FILE_ERRORS[case]
    path = tmp_path / "my.yaml"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    cmd = [str(BIN / "lotlip"), "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "work"), "-n",
           "--configfile", str(path)]
    done = run_child(cmd, capture_output=True, text=True, env=env_with_bin(), timeout=120)
    err = done.stderr.strip()
    assert done.returncode == 1 and done.stdout == ""
    assert err.startswith(f"lotlip: config error: {path}: ") and "\n" not in err, err[-2000:]
    assert expected in err
    assert not (tmp_path / "work").exists()


def test_lotlip_snakemake_is_snakemake_otherwise(tmp_path):
    """Good config files: the same plan as ``snakemake``, and Snakemake's own errors stay Snakemake's."""
    done = run_child([str(BIN / "lotlip"), "snakemake", *snakemake_cmd(tmp_path / "work", "all", "-n")[1:]],
                     capture_output=True, text=True, env=env_with_bin(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert planned_jobs(done.stdout + done.stderr).get("train", 0) >= 1
    unknown = run_child([str(BIN / "lotlip"), "snakemake", "--no-such-option"], capture_output=True, text=True,
                        env=env_with_bin(), timeout=120)
    assert unknown.returncode == 2 and "unrecognized arguments: --no-such-option" in unknown.stderr


def test_plain_snakemake_names_a_missing_config_file_in_a_traceback(tmp_path):
    """The known limit (README): Snakemake reads --configfile before the workflow's code runs and dies in a
    traceback whose last line names the path."""
    missing = tmp_path / "nope.yaml"
    done = snakemake(tmp_path / "work", "all", "-n", configfiles=(str(missing),), timeout=120)
    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip().splitlines()
    assert output and str(missing) in output[-1], output[-5:]
    assert "Traceback" in done.stdout + done.stderr  # once Snakemake says it in one line, update the README


FILE_CASES = {
    "missing-file": (None, "nope.yaml: config file not found"),
    "a-directory": ("DIR", "config file not found"),
    "invalid-yaml": ("train: [1, 2\n", "not valid YAML at line 2"),
    "top-level-list": ("- train\n- world\n", "bad.yaml"),
    "unknown-key": ("train:\n  stpes: 3\n", "unknown key 'train.stpes'"),
    "bool-for-int": ("train:\n  steps: true\n", "key 'train.steps'"),
    "float-for-int": ("train:\n  steps: 1.5\n", "key 'train.steps'"),
    "null-for-int": ("train:\n  steps: null\n", "key 'train.steps'"),
    "negative": ("train:\n  lr: -1\n", "train.lr: -1.0 is below the minimum 0.0"),
    "above-maximum": ("experiments:\n  lotlip:\n    corner_tokens: 99\n",
                      "experiments.lotlip.corner_tokens: 99 is above the maximum 8"),
    "unknown-choice": ("relabel:\n  backend: gpt9\n", "relabel.backend: 'gpt9' is not one of"),
    "launch-executor": ("launch:\n  executor: kube\n", "launch.executor: 'kube' is not one of"),
    "duplicate-seeds": ("seeds: [1, 1]\n", "seeds: [1, 1] must be"),
    "non-utf8": ("train:\n  model: caf\xe9\n".encode("latin-1"), "bad.yaml: not UTF-8 text"),
    "section-as-scalar": ("train: 5\n", "key 'train': expected a mapping, got int"),
    "section-as-list": ("benchmarks: [dci_syn]\n", "key 'benchmarks': expected a mapping, got list"),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_check_config_is_one_line_naming_the_key_or_file(case, tmp_path, capsys):
    content, expected = FILE_CASES[case]
    path = tmp_path / ("nope.yaml" if content is None else "bad.yaml")
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    rc = main(["check-config", str(path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("lotlip check-config: error: ") and "\n" not in err, err
    assert expected in err


RUN = json.dumps({"name": "x"})
ARG_CASES = {
    "cfg-not-json": (["images", "--cfg", "{world: 1", "--out", "o"], "--cfg: not valid JSON"),
    "cfg-unknown-key": (["images", "--cfg", '{"wrld": {}}', "--out", "o"], "--cfg: unknown key 'wrld'"),
    "run-not-json": (["train", "--run", "{", "--shards", "s", "--out", "o"], "--run: not valid JSON"),
    "run-wrong-type": (["train", "--run", '{"name": "x", "train": {"steps": "many"}}', "--shards", "s", "--out", "o"],
                       "key 'train.steps'"),
    "launch-unknown-key": (["train", "--run", RUN, "--shards", "s", "--out", "o", "--launch", '{"gpus": 1}'],
                           "launch: unknown key 'gpus'"),
    "launch-out-of-range": (["train", "--run", RUN, "--shards", "s", "--out", "o", "--launch", '{"nodes": 0}'],
                            "launch.nodes: 0 is below the minimum 1"),
    "missing-shards": (["train", "--run", RUN, "--shards", "SHARDS", "--out", "o"], "sizes.json: not found"),
    "missing-images": (["relabel", "--cfg", "{}", "--images", "SHARDS", "--out", "o"], "scenes.jsonl"),
}


@pytest.mark.parametrize("case", ARG_CASES)
def test_stage_arguments_are_one_line_naming_the_key_or_path(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, expected = ARG_CASES[case]
    argv = [str(tmp_path / "nowhere") if a == "SHARDS" else a for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"lotlip {argv[0]}: error: ") and "\n" not in err, err
    assert expected in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
