"""Tiers coexist in one checkout: each writes under its own roots, and building one re-plans nothing of another."""

import hashlib
from pathlib import Path

import pytest
import yaml

from lotlip.artifacts import artifact_paths, dvc_yaml, tier_stage
from lotlip.config import ConfigError, load_config
from lotlip.plan import eval_files, tier_paths
from tests.conftest import REPO, run_snakemake

BASE = [REPO / "config" / "config.yaml", REPO / ".test" / "config" / "config.yaml"]
TIERS = {  # the repository's tiers: the embedded default, released models on real sets, the paper
    "default": [REPO / "config" / "config.yaml"],
    "release_eval": [REPO / "config" / "config.yaml", REPO / "config" / "release_eval.yaml"],
    "paper": [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"],
}
SHARED = ("resources/data", "resources/models")  # downloads: the catalog fixes what each name holds


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def test_default_tier_writes_at_the_top_and_others_under_their_name():
    default = tier_paths(load_config(*TIERS["default"]))
    assert (default.results, default.resources, default.logs) == ("results", "resources", "logs")
    paper = tier_paths(load_config(*TIERS["paper"]))
    assert (paper.results, paper.resources, paper.logs) == ("results/paper", "resources/paper", "logs/paper")
    cfg = load_config(*TIERS["paper"])
    assert all(f.startswith("results/paper/eval/") for f in eval_files(cfg, ["lotlip"], ["dci"]))


def test_the_repository_tiers_share_no_artifact_but_downloads():
    paths = {tier: artifact_paths(load_config(*files)) for tier, files in TIERS.items()}
    for tier, mine in paths.items():
        for other, theirs in paths.items():
            if other == tier:
                continue
            clashes = [(a, b) for a in mine for b in theirs if _overlaps(a, b) and a not in SHARED]
            assert not clashes, f"{tier} and {other} share {clashes[:3]}"


def test_dvc_yaml_keeps_one_stage_per_tier_and_versions_the_job_records_once():
    text = ""
    for files in TIERS.values():
        text = dvc_yaml(load_config(*files), [str(f.relative_to(REPO)) for f in files], text)
    stages = yaml.safe_load(text)["stages"]
    assert sorted(stages) == ["artifacts", "artifacts-paper", "artifacts-release_eval", "snakemake-metadata"]
    assert stages["artifacts-paper"]["cmd"] == "snakemake --cores 2 all --configfile config/config.yaml " \
                                               "config/paper.yaml"
    outs = [next(iter(o)) for s in stages.values() for o in s["outs"]]
    assert outs.count(".snakemake/metadata") == 1
    again = dvc_yaml(load_config(*TIERS["paper"]), ["config/config.yaml", "config/paper.yaml"], text)
    assert again == text  # rewriting one tier's stage leaves the file as it was
    assert tier_stage(load_config(*TIERS["default"])) == "artifacts"


@pytest.mark.parametrize("name", ["Paper", "eval", "checkpoints", "a b", ""])
def test_a_tier_name_that_would_collide_or_is_not_a_name_is_refused(name):
    with pytest.raises(ConfigError, match="tier"):
        load_config(*TIERS["default"], {"tier": name})


def _snapshot(root: Path, skip: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """(sha256, mtime) of every file under results/ and resources/ outside ``skip``."""
    out = {}
    for top in ("results", "resources"):
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and not any(rel.startswith(s + "/") for s in skip):
                out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


@pytest.mark.slow
def test_two_tiers_build_side_by_side_and_neither_replans_the_other(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"select": {"experiments": ["short"], "benchmarks": ["dci_syn", "coco_syn"]},
                                     "paper": {"tables": {}, "figures": {}, "claims": {}}}))
    variant = tmp_path / "variant.yaml"
    variant.write_text(yaml.safe_dump({"tier": "variant", "world": {"seed": 7}}))
    default_cfg = [*map(str, BASE), str(small)]
    variant_cfg = [*default_cfg, str(variant)]
    work = tmp_path / "checkout"
    work.mkdir()

    built = run_snakemake(work, "all", "--configfile", *default_cfg, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    before = _snapshot(work, skip=("results/variant", "resources/variant"))
    assert "results/table_long_retrieval.csv" in before and "resources/images/train/scenes.jsonl" in before

    other = run_snakemake(work, "all", "--configfile", *variant_cfg, timeout=900)
    assert other.returncode == 0, other.stderr[-3000:]
    assert _snapshot(work, skip=("results/variant", "resources/variant")) == before  # not one byte or time
    assert (work / "results" / "variant" / "table_long_retrieval.csv").is_file()
    assert (work / "logs" / "variant" / "images.log").is_file()
    ours = (work / "resources" / "variant" / "images" / "train" / "scenes.jsonl").read_bytes()
    assert ours != (work / "resources" / "images" / "train" / "scenes.jsonl").read_bytes()  # its own world

    for cfg in (default_cfg, variant_cfg):
        again = run_snakemake(work, "all", "-n", "--configfile", *cfg, timeout=300)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "Nothing to be done" in again.stdout + again.stderr, (cfg, again.stdout[-2000:])


def test_lotlip_dvc_yaml_adds_a_tier_stage_beside_the_existing_ones(tmp_path, monkeypatch):
    from lotlip.cli import main

    monkeypatch.chdir(REPO)
    out = tmp_path / "dvc.yaml"
    assert main(["dvc-yaml", "--out", str(out), "config/config.yaml"]) == 0
    assert out.read_text() == (REPO / "dvc.yaml").read_text()
    assert main(["dvc-yaml", "--out", str(out), "config/config.yaml", "config/paper.yaml"]) == 0
    stages = yaml.safe_load(out.read_text())["stages"]
    assert sorted(stages) == ["artifacts", "artifacts-paper", "snakemake-metadata"]
