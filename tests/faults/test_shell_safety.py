"""Fault 8: config strings with spaces, quotes, ``;``, ``$()``, backticks, globs and braces reach every rule as
data: no shell injection, the value arrives intact.

- Every rule: the workflow is planned (``snakemake -n -p``) with such strings in every free-text config field that
  reaches a shell command; each printed command then runs in ``bash`` exactly as Snakemake runs it, with ``lotlip``
  replaced by a recorder of its argv.
- The real train rule runs with a model config path full of such characters.
- The sbatch script submitit writes for ``launch`` settings is executed by bash; a control character (newline,
  CR, tab, NUL, ...) in any ``launch`` string is refused with one line naming the key and a non-zero exit status
  by ``lotlip train``, ``lotlip check-config`` and the workflow (before planning).
- Run, benchmark and model names (they become paths and wildcards) cannot contain such characters at all.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
import torch
import yaml

from lotlip.cli import main
from lotlip.config import ConfigError, LaunchConfig, load_config
from lotlip.model.factory import get_model_config
from lotlip.train import launcher
from tests.conftest import REPO, run_child
from tests.faults.conftest import snakemake, tiny_run, train_args

PWNED = ("PWNED1", "PWNED2", "PWNED3")  # what an injection would create in the working directory


def spicy(tag: str, newline: bool = True) -> str:
    """A config string that breaks any unquoted or half-quoted use in a shell command."""
    text = f"{tag} it's \"q\" a;touch PWNED3; $(touch PWNED1) `touch PWNED2` $HOME * ~ & | > \\ end"
    return text + ("\nsecond line" if newline else "")


def spicy_path(folder: Path, tag: str, suffix: str) -> Path:
    """A file path whose folder name is spicy (no newline, no '/')."""
    return folder / spicy(tag, newline=False) / f"{tag}{suffix}"


def _pwned(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob("PWNED*") if p.name in PWNED]


def _strings(value) -> set[str]:
    """Every string an argv carries, JSON arguments opened (keys and leaves)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.add(value)
        if value[:1] in "[{":
            try:
                found |= _strings(json.loads(value))
            except json.JSONDecodeError:
                pass
    elif isinstance(value, dict):
        for k, v in value.items():
            found |= _strings(k) | _strings(v)
    elif isinstance(value, list):
        for v in value:
            found |= _strings(v)
    return found


def _spicy_config(tmp_path: Path) -> tuple[dict, dict[str, str]]:
    """A config override with a spicy value in every free-text field that reaches a rule; field -> value."""
    base = load_config(REPO / "config" / "config.yaml", REPO / ".test" / "config" / "config.yaml")
    model_json = spicy_path(tmp_path, "train.model", ".json")
    model_json.parent.mkdir(parents=True)
    model_json.write_text(json.dumps(get_model_config("lotlip-tiny")))
    weights = spicy_path(tmp_path, "models.local.path", ".pt")
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    imagenet = spicy_path(tmp_path, "benchmarks.imagenet_real.path", "")
    imagenet.mkdir(parents=True)
    image_init = spicy_path(tmp_path, "experiments.lotlip.image_init", ".pt")  # a train input: it must exist
    image_init.parent.mkdir(parents=True, exist_ok=True)
    image_init.write_bytes(b"")
    values = {
        "relabel.hf.short_prompt": spicy("relabel.hf.short_prompt"),
        "relabel.hf.long_prompt": spicy("relabel.hf.long_prompt"),
        "relabel.precomputed.path": spicy("relabel.precomputed.path"),
        "train.model": str(model_json),
        "train.device": spicy("train.device"),
        "experiments.lotlip.image_init": str(image_init),
        "launch.log_folder": spicy("launch.log_folder", newline=False),  # launch strings: no control character
        "launch.account": spicy("launch.account", newline=False),
        "launch.qos": spicy("launch.qos", newline=False),
        "launch.sbatch.comment": spicy("launch.sbatch.comment", newline=False),
        "models.local.path": str(weights),
        "models.remote.url": "http://127.0.0.1:9/" + spicy("models.remote.url", newline=False) + ".pt",
        "benchmarks.imagenet_real.path": str(imagenet),
        "reference.source": spicy("reference.source"),
    }
    table, figure, claim = next(iter(base.paper.tables)), next(iter(base.paper.figures)), next(iter(base.paper.claims))
    values[f"paper.tables.{table}.caption"] = spicy("paper.tables.caption")
    values[f"paper.figures.{figure}.caption"] = spicy("paper.figures.caption")
    values[f"paper.claims.{claim}.text"] = spicy("paper.claims.text")
    override: dict = {
        "models": {"local": {"kind": "lotlip", "path": values["models.local.path"]},
                   "remote": {"kind": "release", "arch": "lotlip-tiny", "url": values["models.remote.url"]}},
        "benchmarks": {"imagenet_real": {"source": "imagenet", "kind": "zeroshot", "check_count": False,
                                         "path": values["benchmarks.imagenet_real.path"]}},
        "reference": {"values": {"lotlip": {"dci_syn": [1.0, 2.0]}}},
    }
    for key, value in values.items():
        node = override
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return override, values


RECORDER = """#!/bin/bash
printf '%s\\0' "$@" > "$(mktemp -p "$FAULT_RECORD")"
"""  # one file per call, each argument NUL-terminated


def test_every_rule_receives_config_strings_as_data(tmp_path):
    override, values = _spicy_config(tmp_path / "inputs")
    (tmp_path / "spicy.yaml").write_text(yaml.safe_dump(override))
    work = tmp_path / "work"
    plan = snakemake(work, "all", "-n", "-p", configfiles=(str(tmp_path / "spicy.yaml"),), timeout=300)
    assert plan.returncode == 0, (plan.stdout + plan.stderr)[-3000:]
    found = re.findall(r"^Shell command: (.*?)(?=\n\n|\nJob stats:|\Z)", plan.stdout + plan.stderr, flags=re.S | re.M)
    commands = [c for c in found if c != "None"]  # rule all has none
    rules = set(re.findall(r"^rule (\w+):", plan.stdout + plan.stderr, flags=re.M)) - {"all"}
    assert len(commands) >= len(rules) >= 10, (len(commands), rules)

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lotlip").write_text(RECORDER)
    (bin_dir / "lotlip").chmod(0o755)
    record = tmp_path / "argv"
    record.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAULT_RECORD": str(record)}
    for command in commands:
        words = shlex.split(command)
        if ">" in words:  # Snakemake creates the log folder before running the command
            (work / words[words.index(">") + 1]).parent.mkdir(parents=True, exist_ok=True)
        done = run_child(["bash", "-c", f"set -euo pipefail; {command}"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)

    argvs = [p.read_bytes().decode().split("\0")[:-1] for p in record.iterdir()]
    assert len(argvs) == len(commands)
    assert {a[0] for a in argvs} >= {"images", "synthetic-benchmark", "relabel", "shards", "train", "evaluate"}
    received = _strings(argvs)
    missing = {field: value for field, value in values.items() if value not in received}
    assert not missing, f"config strings that reached no rule intact: {sorted(missing)}"
    assert _pwned(tmp_path) == []


BRACES = "Describe {wildcards.run} and {input} for {{x}} in detail."


def test_braces_in_config_strings_reach_rules_as_data(tmp_path):
    (tmp_path / "braces.yaml").write_text(yaml.safe_dump({"relabel": {"hf": {"long_prompt": BRACES}}}))
    plan = snakemake(tmp_path / "work", "all", "-n", "-p", configfiles=(str(tmp_path / "braces.yaml"),), timeout=300)
    assert plan.returncode == 0, (plan.stdout + plan.stderr)[-2000:]
    relabel = re.search(r"^Shell command: (lotlip relabel .*?)\n\n", plan.stdout, flags=re.S | re.M).group(1)
    assert BRACES in _strings(shlex.split(relabel))


def test_train_command_works_with_a_model_config_path_full_of_shell_characters(tiny_cfg, tiny_world, tmp_path):
    """What the train rule runs (its shell quoting is checked above): the spicy path is used as a path."""
    from lotlip.cli import main
    from tests.faults.conftest import tiny_run, train_args

    model_json = spicy_path(tmp_path / "inputs", "train.model", ".json")
    model_json.parent.mkdir(parents=True)
    model_json.write_text(json.dumps(get_model_config("lotlip-tiny")))
    run = tiny_run(tiny_cfg, model=str(model_json), steps=1, batch_size=8)
    out = spicy_path(tmp_path, "out", "") / "model.pt"
    assert main(train_args(run, tiny_world[2], out)) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["config"]["train"]["model"] == str(model_json)  # arrived intact
    assert _pwned(tmp_path) == []


LAUNCH_FIELDS = ["account", "qos", "log_folder", "sbatch value"]  # strings submitit writes into the job script


def _launch(field: str, value: str, tmp_path: Path) -> LaunchConfig:
    if field == "sbatch value":
        return LaunchConfig(executor="slurm", log_folder=str(tmp_path / "logs"), sbatch={"comment": value})
    if field == "log_folder":
        return LaunchConfig(executor="slurm", log_folder=str(tmp_path / value))
    return LaunchConfig(executor="slurm", log_folder=str(tmp_path / "logs"), **{field: value})


@pytest.mark.parametrize("field", LAUNCH_FIELDS)
def test_slurm_job_script_carries_launch_strings_as_data(field, tmp_path, monkeypatch):
    """A one-line launch string full of shell characters is valid, and written so that bash runs none of it."""
    value = f"x {spicy('v', newline=False)}"
    if field == "log_folder":
        value = value.replace("/", "_")
    cfg = _launch(field, value, tmp_path)
    monkeypatch.setattr(launcher.shutil, "which", lambda name: f"/usr/bin/{name}")  # no cluster needed
    launcher.validate(cfg)
    folder = launcher.job_folder(cfg, "lotlip-train-x")  # as launcher.submit makes it
    executor = launcher.make_executor(cfg, folder, "lotlip-train-x")._executor
    script = tmp_path / "job.sh"
    script.write_text(executor._make_submission_file_text(executor._submitit_command_str, "uid"))
    bin_dir, cwd = tmp_path / "bin", tmp_path / "cwd"
    bin_dir.mkdir()
    cwd.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # the job's command; only the script's own lines matter
    (bin_dir / "srun").chmod(0o755)
    run_child(["bash", str(script)], cwd=cwd, env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"},
              capture_output=True, timeout=60)
    assert _pwned(tmp_path) == [], script.read_text()


# Every launch string -> (the launch mapping carrying a bad value, the key the one line must name). A control
# character in a string of the job script would end its #SBATCH line: the rest would be a line bash runs.
CONTROL_FIELDS = {
    "executor": (lambda v: {"executor": v}, "launch.executor: "),
    "partition": (lambda v: {"executor": "slurm", "partition": v}, "launch.partition: "),
    "account": (lambda v: {"executor": "slurm", "account": v}, "launch.account: "),
    "qos": (lambda v: {"executor": "slurm", "qos": v}, "launch.qos: "),
    "log_folder": (lambda v: {"executor": "slurm", "log_folder": v}, "launch.log_folder: "),
    "sbatch value": (lambda v: {"executor": "slurm", "sbatch": {"comment": v}}, "launch.sbatch.comment: "),
    "sbatch key": (lambda v: {"executor": "slurm", "sbatch": {v: "x"}}, "launch.sbatch: flag name "),
}
CONTROL_CHARS = {"LF": "\n", "CR": "\r", "TAB": "\t", "NUL": "\0", "VT": "\v", "ESC": "\x1b", "DEL": "\x7f",
                 "NEL": "\x85"}


@pytest.mark.parametrize("char", CONTROL_CHARS)
@pytest.mark.parametrize("field", CONTROL_FIELDS)
def test_control_characters_in_launch_strings_are_refused(field, char, tmp_path, capsys):
    """Refused, never written: ``lotlip train --launch`` and ``lotlip check-config`` exit 2 with one line naming
    the key (the workflow: next test)."""
    make, key = CONTROL_FIELDS[field]
    launch = make(f"main{CONTROL_CHARS[char]}touch PWNED3")
    rc = main(train_args(tiny_run(load_config({})), tmp_path / "shards", tmp_path / "run" / "model.pt",
                         "--launch", json.dumps(launch)))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"lotlip train: error: {key}") and "\n" not in err, err
    (tmp_path / "launch.yaml").write_text(yaml.safe_dump({"launch": launch}))
    rc = main(["check-config", str(tmp_path / "launch.yaml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"lotlip check-config: error: {key}") and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["launch.yaml"]  # no job folder, no run folder


@pytest.mark.parametrize("field", CONTROL_FIELDS)
def test_workflow_refuses_a_newline_in_launch_strings_before_planning(field, tmp_path):
    make, key = CONTROL_FIELDS[field]
    (tmp_path / "launch.yaml").write_text(yaml.safe_dump({"launch": make("main\ntouch PWNED3 #")}))
    done = snakemake(tmp_path / "work", "all", "-n", configfiles=(str(tmp_path / "launch.yaml"),), timeout=120)
    err = done.stderr.strip()
    assert done.returncode != 0
    assert err.startswith(f"lotlip: config error: {key}") and "\n" not in err, err[-2000:]
    assert _pwned(tmp_path) == []


@pytest.mark.parametrize("section", ["experiments", "benchmarks", "models"])
def test_names_cannot_carry_shell_characters(section):
    entry = {"experiments": {}, "benchmarks": {}, "models": {"kind": "lotlip", "path": "m.pt"}}[section]
    with pytest.raises(ConfigError, match="may use only letters, digits") as err:
        load_config({section: {"x;$(touch PWNED1)": entry}})
    assert "\n" not in str(err.value)
