"""Studies (config/studies/<study>.yaml): named tiers that split config/full.yaml, each three seeds within 90 minutes,
whose tables, figures and claims the snapshot stage copies into results/studies/<tier>/; the config errors a study
naming something that does not exist gets before anything runs."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest
import yaml

from lotlip import plan
from lotlip.config import ConfigError, load_config, resolve_run, to_dict
from lotlip.provenance import git_commit
from lotlip.stages.snapshot import config_hash, write_snapshot
from tests.conftest import REPO, planned_jobs, run_snakemake

CONFIG = REPO / "config" / "config.yaml"
FULL = REPO / "config" / "full.yaml"
STUDIES = sorted((REPO / "config" / "studies").glob("*.yaml"))
STUDY = REPO / "config" / "studies" / "captioners.yaml"


def study_cfg(path=STUDY, *overrides):
    return load_config(CONFIG, path, *overrides)


def one_line_error(*sources) -> str:
    with pytest.raises(ConfigError) as info:
        plan.check_plan(load_config(*sources))
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the study files ----------------------------------------------------------------------------------------


def test_there_are_studies():
    assert len(STUDIES) >= 7, STUDIES


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_is_a_checked_three_seed_tier_named_as_its_file(path):
    cfg = study_cfg(path)
    plan.check_plan(cfg)
    assert cfg.tier == path.stem and cfg.snapshot
    assert cfg.seeds == [0, 1, 2]
    runs = plan.trained_runs(cfg)
    assert runs and all(plan.experiment_seeds(cfg, r) == [0, 1, 2] for r in runs)
    # it reports what it names: each selected table, figure and claim is built
    assert plan.paper_tables(cfg) == [t for t in cfg.paper.tables if t in cfg.select.paper_tables]
    assert plan.paper_figures(cfg) == [f for f in cfg.paper.figures if f in cfg.select.paper_figures]
    assert plan.checked_claims(cfg) == [c for c in cfg.paper.claims if c in cfg.select.claims]
    assert plan.checked_claims(cfg) or plan.paper_tables(cfg) or plan.paper_figures(cfg)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_header_states_its_command_and_time_within_90_minutes(path):
    cfg = study_cfg(path)
    header = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert plan.snapshot_command(cfg) in header
    minutes = [int(m) for m in re.findall(r"about (\d+) min", header)]
    assert minutes and max(minutes) <= 90, header


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_runs_are_those_of_full_yaml_or_declared_by_the_study(path):
    """A run full.yaml (or the default) declares is trained as full.yaml trains it; others are the study's own."""
    cfg, full = study_cfg(path), load_config(CONFIG, FULL)
    own = set(yaml.safe_load(path.read_text()).get("experiments") or {})
    for run in plan.trained_runs(cfg):
        assert run in full.experiments or run in own, run
        if run in full.experiments:
            got, want = to_dict(resolve_run(cfg, run)), to_dict(resolve_run(full, run))
            got["train"].pop("model"), want["train"].pop("model")  # a study may train another model config
            assert got == want, run


def test_studies_together_train_every_run_of_full_yaml():
    full = load_config(CONFIG, FULL)
    trained = {r for path in STUDIES for r in plan.trained_runs(study_cfg(path))}
    assert set(full.experiments) <= trained, sorted(set(full.experiments) - trained)


@pytest.mark.parametrize(("study", "runs"), [("pretrained_tower", {"short", "long", "lotlip"}),
                                             ("pretrained_tower_mask", {"lotlip", "lotlip_nomask"})])
def test_pretrained_tower_studies_train_the_minilm_model_config(study, runs):
    cfg = study_cfg(REPO / "config" / "studies" / f"{study}.yaml")
    assert cfg.train.model == "lotlip_minilm-tiny"
    assert set(plan.trained_runs(cfg)) == runs
    assert {resolve_run(cfg, r).train.model for r in plan.trained_runs(cfg)} == {"lotlip_minilm-tiny"}
    assert plan.paper_table_rows(cfg, study)


def test_the_pretrained_tower_studies_train_lotlip_alike():
    """The mask study's LoTLIP is the same run (config and seeds) as pretrained_tower's, so their numbers agree."""
    tower, mask = (study_cfg(REPO / "config" / "studies" / f"{s}.yaml") for s in ("pretrained_tower",
                                                                                      "pretrained_tower_mask"))
    assert to_dict(resolve_run(tower, "lotlip")) == to_dict(resolve_run(mask, "lotlip"))
    assert plan.experiment_seeds(tower, "lotlip") == plan.experiment_seeds(mask, "lotlip")


def test_a_later_files_rows_replace_the_inherited_rows_in_its_order():
    cfg = study_cfg(REPO / "config" / "studies" / "corner_tokens.yaml")
    assert list(cfg.paper.tables["corner_tokens"].rows) == [
        "long", "lotlip_k1_nomask", "lotlip_k1", "lotlip_nomask", "lotlip", "lotlip_k4_nomask", "lotlip_k4"]
    # a file that does not give rows keeps the inherited ones
    cfg = load_config(CONFIG, {"paper": {"tables": {"corner_tokens": {"caption": "other"}}}})
    assert list(cfg.paper.tables["corner_tokens"].rows) == ["long", "lotlip_nomask", "lotlip"]


def test_without_select_paper_every_buildable_item_is_built():
    cfg = load_config(CONFIG)
    assert cfg.select.paper_tables is None and cfg.select.claims is None
    assert plan.paper_tables(cfg) == list(cfg.paper.tables)
    assert plan.checked_claims(cfg) == list(cfg.paper.claims)


# --- bad input: one config error naming it, before anything runs ----------------------------------------------


@pytest.mark.parametrize(("override", "named"), [
    ({"select": {"experiments": ["lotlip", "lotlip_k9"]}}, "lotlip_k9"),
    ({"select": {"benchmarks": ["dci_syn", "nope_syn"]}}, "nope_syn"),
    ({"select": {"models": ["no_such_model"]}}, "no_such_model"),
    ({"train": {"model": "lotlip-huge"}}, "lotlip-huge"),
    ({"select": {"paper_tables": ["table_x"]}}, "table_x"),
    ({"select": {"paper_figures": ["fig9"]}}, "fig9"),
    ({"select": {"claims": ["claim_x"]}}, "claim_x"),
    ({"paper": {"tables": {"captioners": {"rows": {"lotlip_gpt": "GPT only"}}}}}, "lotlip_gpt"),
    ({"paper": {"claims": {"c": {"treatment": "lotlip", "control": "lotlip_q"}}}}, "lotlip_q"),
    ({"experiments": {"lotlip_ti": {"text_init": "shortt"}}}, "shortt"),
    ({"paper": {"tables": {"captioners": {"benchmarks": ["dci_syn", "dci_real"]}}}}, "dci_real"),
])
def test_a_study_naming_what_does_not_exist_is_one_config_error_naming_it(override, named):
    assert named in one_line_error(CONFIG, STUDY, override)


def test_selected_paper_items_must_be_buildable_by_the_tier():
    small = {"paper": {"tables": {"small": {"rows": {"short_small": "1.5k images"}}}},
             "select": {"paper_tables": ["small"]}}
    assert "'small' has no row" in one_line_error(CONFIG, STUDY, small)
    assert "'long'" in one_line_error(CONFIG, STUDY, {"select": {"claims": ["corners_help_long"]}})
    assert "fig4_token_limit" in one_line_error(CONFIG, STUDY, {"select": {"paper_figures": ["fig4_token_limit"]}})
    message = one_line_error(CONFIG, STUDY, {"select": {"benchmarks": ["coco_syn"], "experiments": ["short", "lotlip"],
                                                        "paper_figures": ["fig1_similarity_maps"]}})
    assert "dci_syn" in message


def test_a_text_init_source_must_be_trained_by_the_tier():
    message = one_line_error(CONFIG, REPO / "config" / "studies" / "text_init.yaml",
                             {"select": {"experiments": ["long", "lotlip", "lotlip_textinit"], "claims": []}})
    assert "'lotlip_textinit'" in message and "'short'" in message


def test_snapshot_is_refused_on_the_default_tier():
    assert "snapshot" in one_line_error(CONFIG, {"snapshot": True})
    assert "snapshot" in one_line_error(CONFIG, STUDY, {"tier": "default"})


# --- the snapshot stage ----------------------------------------------------------------------------------------


def fake_results(root, cfg):
    """A tier's results folder with two tables, a figure and the claims check; returns the files."""
    res = root / "results" / cfg.tier
    (res / "figures").mkdir(parents=True)
    files = []
    for name, text in [("table_captioners.csv", "run,dci_syn\nlotlip,1.0\n"), ("table_captioners.md", "| run |\n"),
                       ("table_long_retrieval.csv", "run,seed\n"), ("table_long_retrieval.md", "| run |\n"),
                       ("figures/fig2_subcaptions.png", "\x89PNG fake"), ("figures/fig2_subcaptions.csv", "x,y\n"),
                       ("claims.csv", "claim,verdict\n"), ("claims.md", "| claim |\n")]:
        (res / name).write_text(text)
        files.append(res / name)
    return res, files


def test_write_snapshot_copies_the_tier_outputs_with_snapshot_json(tmp_path):
    cfg = study_cfg()
    res, files = fake_results(tmp_path, cfg)
    out = tmp_path / "results" / "studies" / cfg.tier
    out.mkdir(parents=True)
    (out / "stale.csv").write_text("from an older snapshot")
    record = write_snapshot(cfg, files, res, out, commit="abc123", version="9.9")
    copied = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert copied == sorted([f.relative_to(res).as_posix() for f in files] + ["snapshot.json"])
    assert (out / "figures" / "fig2_subcaptions.png").read_text() == "\x89PNG fake"
    saved = json.loads((out / "snapshot.json").read_text())
    assert saved == record
    assert saved["tier"] == "captioners" and saved["commit"] == "abc123" and saved["lotlip_version"] == "9.9"
    assert saved["config_sha256"] == config_hash(cfg) == config_hash(load_config(to_dict(cfg)))
    assert re.fullmatch(r"[0-9a-f]{64}", saved["config_sha256"])
    assert saved["seeds"] == [0, 1, 2]
    assert saved["runs"] == {r: [0, 1, 2] for r in plan.trained_runs(cfg)}
    assert saved["command"] == ("snakemake --cores 2 all --configfile config/config.yaml "
                                "config/studies/captioners.yaml")
    assert set(saved["files"]) == set(copied) - {"snapshot.json"}
    assert not list(out.parent.glob(".*.tmp"))


def test_config_hash_follows_the_config():
    assert config_hash(study_cfg()) != config_hash(study_cfg(STUDY, {"train": {"steps": 201}}))


def test_write_snapshot_writes_nothing_when_an_input_is_missing(tmp_path):
    cfg = study_cfg()
    res, files = fake_results(tmp_path, cfg)
    out = tmp_path / "snap"
    write_snapshot(cfg, files, res, out, commit="old", version="1")
    (res / "claims.md").unlink()
    with pytest.raises(FileNotFoundError, match=r"claims\.md.*snakemake --cores 2 all"):
        write_snapshot(cfg, files, res, out, commit="new", version="1")
    assert json.loads((out / "snapshot.json").read_text())["commit"] == "old"  # the old snapshot is intact
    with pytest.raises(FileNotFoundError):
        write_snapshot(cfg, files, res, tmp_path / "fresh", commit="new", version="1")
    assert not (tmp_path / "fresh").exists()


def test_write_snapshot_refuses_default_tier_no_files_and_outside_files(tmp_path):
    cfg = study_cfg()
    res, files = fake_results(tmp_path, cfg)
    with pytest.raises(ConfigError, match="default tier"):
        write_snapshot(load_config(CONFIG), files, res, tmp_path / "a", commit="c", version="v")
    with pytest.raises(ValueError, match="nothing to snapshot"):
        write_snapshot(cfg, [], res, tmp_path / "b", commit="c", version="v")
    stray = tmp_path / "elsewhere.csv"
    stray.write_text("x")
    with pytest.raises(ValueError, match="not under"):
        write_snapshot(cfg, [*files, stray], res, tmp_path / "c", commit="c", version="v")
    assert not any((tmp_path / n).exists() for n in "abc")


def test_lotlip_snapshot_cli(tmp_path, capsys):
    from lotlip.cli import main

    cfg = study_cfg()
    res, files = fake_results(tmp_path, cfg)
    args = ["snapshot", "--cfg", json.dumps(to_dict(cfg)), "--results", str(res), "--out", str(tmp_path / "snap")]
    assert main([*args, *map(str, files)]) == 0
    saved = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert saved["config_sha256"] == config_hash(cfg) and saved["commit"]
    assert main([*args, *map(str, files), str(res / "table_missing.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lotlip snapshot: error:") and "table_missing.csv" in err and "\n" not in err


def test_a_study_plans_one_snapshot_after_its_tables_and_the_default_none(tmp_path):
    """Dry runs: the study's `all` ends in its snapshot, written under results/studies/<study>/."""
    study = run_snakemake(tmp_path, "-n", "all", "--configfile", str(REPO / "config" / "config.yaml"),
                          str(REPO / "config" / "studies" / "raw_share.yaml"), timeout=300)
    assert study.returncode == 0, study.stderr[-2000:]
    assert planned_jobs(study.stdout + study.stderr)["snapshot"] == 1
    assert "results/studies/raw_share/snapshot.json" in study.stdout + study.stderr
    default = run_snakemake(tmp_path, "-n", "all", "--configfile", str(REPO / "config" / "config.yaml"),
                            timeout=300)
    assert default.returncode == 0 and "snapshot" not in planned_jobs(default.stdout + default.stderr)


def test_a_snapshot_being_rewritten_does_not_mark_its_commit_dirty(tmp_path):
    """Snakemake removes a study's tracked snapshot before the job rewrites it; only other changes are dirty."""
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, timeout=30)

    (tmp_path / "studies" / "s").mkdir(parents=True)
    (tmp_path / "studies" / "s" / "claims.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "studies" / "s" / "claims.md").unlink()
    git_commit.cache_clear()
    assert git_commit(str(tmp_path)).endswith("+dirty")
    clean = git_commit(str(tmp_path), ignore=str(tmp_path / "studies" / "s"))
    assert len(clean) == 40 and "+" not in clean
    (tmp_path / "code.py").write_text("x = 2\n")
    git_commit.cache_clear()
    assert git_commit(str(tmp_path), ignore=str(tmp_path / "studies" / "s")) == clean + "+dirty"


def test_the_workflow_orders_a_studys_table_rows_as_the_study_declares_them(tmp_path):
    """Snakemake's own --configfile merge keeps config/config.yaml's rows first (Table 3 would list K = 2 before
    K = 1); the workflow hands the paper-table job the rows in the study file's order."""
    study = REPO / "config" / "studies" / "corner_tokens.yaml"
    done = run_snakemake(tmp_path, "-n", "-p", "results/corner_tokens/table_corner_tokens.csv",
                         "--configfile", str(CONFIG), str(study), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    command = next(line for line in done.stdout.splitlines() if "lotlip paper-table" in line)
    words = shlex.split(command)
    rows = json.loads(words[words.index("--spec") + 1])["rows"]
    declared = yaml.safe_load(study.read_text())["paper"]["tables"]["corner_tokens"]["rows"]
    assert list(rows) == list(declared) == ["long", "lotlip_k1_nomask", "lotlip_k1", "lotlip_nomask", "lotlip",
                                            "lotlip_k4_nomask", "lotlip_k4"]
