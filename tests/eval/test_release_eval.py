"""Release-evaluation tier: every model source loads from random-init weights saved in its published format
(tiny architectures, real code paths) and evaluates through the runner; reference columns; the workflow plans
both real tiers offline and runs the release tier end to end on fixtures."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import open_clip
import pandas as pd
import pytest
import torch
from PIL import Image

from lotlip import config as lotlip_config
from lotlip import plan
from lotlip.cli import build_parser
from lotlip.constants import MODEL_KINDS, TABLES
from lotlip.data.import_real import import_benchmark
from lotlip.eval.runner import evaluate_benchmark
from lotlip.model import create_model
from lotlip.model.checkpoint import save_model
from lotlip.model.external import longclip_state_dict, open_clip_arch
from lotlip.model.sources import ModelSpec, load_for_eval
from lotlip.report.reference import with_reference
from lotlip.report.tables import build_table, write_table
from tests.conftest import BIN, REPO, env_with_bin, planned_jobs, run_child, snakemake_cmd

TINY_CLIP = {"embed_dim": 32, "quick_gelu": True,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TEXTS = ["a red square left of a blue circle. the circle is small", "two green triangles"]


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


SCHEMA_READY = ("source" in _fields(lotlip_config.BenchmarkConfig)
                and {"models", "select", "reference"} <= _fields(lotlip_config.LotlipConfig))
needs_schema = pytest.mark.skipif(not SCHEMA_READY, reason=(
    "lotlip.config lacks the release-tier schema (BenchmarkConfig.source/path/check_count, LotlipConfig.models/"
    "select/reference): apply the config.py, cli.py, common.smk and Snakefile edits of the release-tier report"))


# --- fixtures: tiny architectures, weights in each published format, one imported benchmark ---------------

@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("arch") / "tiny-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return str(path)


def _urban_layout(root: Path, n: int = 6) -> None:
    """A tiny Urban1k in its published layout (``Urban1k/{image,caption}/<n>.*``)."""
    base = root / "urban1k" / "Urban1k"
    (base / "image").mkdir(parents=True)
    (base / "caption").mkdir()
    for i in range(1, n + 1):
        Image.new("RGB", (16, 16), (30 * i, 255 - 30 * i, 90)).save(base / "image" / f"{i}.jpg")
        (base / "caption" / f"{i}.txt").write_text(f"A street with item {i}. Cars. Trees\nsecond line\n")


def _coco_layout(root: Path) -> None:
    """A tiny Karpathy MSCOCO test split (2 images x 5 captions)."""
    images = [{"filename": f"COCO_val2014_{i:012d}.jpg", "filepath": "val2014", "split": "test",
               "sentences": [{"raw": f"item {i}, caption {k}"} for k in range(5)]} for i in (1, 2)]
    (root / "karpathy").mkdir(parents=True)
    (root / "karpathy" / "dataset_coco.json").write_text(json.dumps({"images": images}))
    (root / "coco" / "val2014").mkdir(parents=True)
    for i in (1, 2):
        Image.new("RGB", (16, 16), (100 * i, 20, 20)).save(root / "coco" / "val2014" / images[i - 1]["filename"])


@pytest.fixture(scope="module")
def long_bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _urban_layout(root)
    import_benchmark("urban1k", root, root / "bench", check_count=False)
    return root / "bench"


def _check_evaluates(model: torch.nn.Module, tokenizer, bench: Path) -> None:
    metrics = evaluate_benchmark(model, tokenizer, bench, batch_size=4)
    assert metrics["kind"] == "long" and metrics["n_images"] == 6
    assert 0.0 <= metrics["i2t_r1"] <= 100.0 and 0.0 <= metrics["t2i_r1"] <= 100.0


# --- (a) our checkpoints, (b) released LoTLIP model.pt ---------------------------------------------------

def test_own_checkpoint_loads_for_eval(tmp_path, long_bench):
    model = create_model("lotlip-tiny").eval()
    save_model(tmp_path / "model.pt", model, "lotlip-tiny", True, {"seed": 0})
    loaded, tok = load_for_eval({"kind": "lotlip", "path": str(tmp_path / "model.pt")})
    tokens = tok(TEXTS)
    assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))
    _check_evaluates(loaded, tok, long_bench)


def test_release_model_pt_loads_plain_or_wrapped(tmp_path, long_bench):
    model = create_model("lotlip_bert-tiny").eval()
    torch.save(model.state_dict(), tmp_path / "model.pt")  # the release: a plain CustomTextCLIP state dict
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 32},
               tmp_path / "wrapped.pt")  # an open_clip training checkpoint
    for name in ("model.pt", "wrapped.pt"):
        loaded, tok = load_for_eval(ModelSpec("release", str(tmp_path / name), "lotlip_bert-tiny"))
        tokens = tok(TEXTS)
        assert tokens[0, 1:3].tolist() == tok.corner_ids  # [CLS] [Corner0] [Corner1] ...
        assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))
    _check_evaluates(loaded, tok, long_bench)
    with pytest.raises(ValueError, match=r"model.pt: state dict does not match the model: missing keys"):
        load_for_eval({"kind": "release", "arch": "lotlip-tiny", "path": str(tmp_path / "model.pt")})


# --- (c) open_clip + weights file (OpenAI CLIP) -----------------------------------------------------------

def test_open_clip_state_dict_loads_through_open_clip(tmp_path, tiny_arch, long_bench):
    model = open_clip.create_model(open_clip_arch(tiny_arch)).eval()
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    weights = str(tmp_path / "open_clip_pytorch_model.bin")
    loaded, tok = load_for_eval({"kind": "openclip", "arch": tiny_arch, "path": weights,
                                 "url": "https://example.invalid/w.bin", "sha256": None})  # fetch-only keys ignored
    tokens = tok(TEXTS)
    assert tokens.shape == (2, 77) and tok.pad_id == 0 and tokens[1, 0] == 49406
    assert tokens[1, tokens[1].nonzero().max()] == 49407  # [SOT] two green triangles [EOT] [PAD]...
    assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))
    image = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded.encode_image(image), model.encode_image(image))
    _check_evaluates(loaded, tok, long_bench)


def test_open_clip_refuses_torchscript_and_names_a_misfit(tmp_path, tiny_arch):
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "ViT-B-16.pt"))
    with pytest.raises(ValueError, match="ViT-B-16.pt: a TorchScript archive .* weights_only=True; use the plain "
                                         "state dict instead: open_clip_model.safetensors"):
        load_for_eval({"kind": "openclip", "arch": tiny_arch, "path": str(tmp_path / "ViT-B-16.pt")})
    wide = tmp_path / "wide-clip.json"
    wide.write_text(json.dumps({**TINY_CLIP, "embed_dim": 48}))
    torch.save(open_clip.create_model(open_clip_arch(str(wide))).state_dict(), tmp_path / "wide.bin")
    with pytest.raises(ValueError, match="wide.bin: does not load into open_clip tiny-clip: .*size mismatch"):
        load_for_eval({"kind": "openclip", "arch": tiny_arch, "path": str(tmp_path / "wide.bin")})
    with pytest.raises(ValueError, match="arch 'ViT-Z-99': not an open_clip model"):
        load_for_eval({"kind": "openclip", "arch": "ViT-Z-99", "path": str(tmp_path / "wide.bin")})


# --- (d) Long-CLIP --------------------------------------------------------------------------------------

def _longclip_checkpoint(arch: str, path: Path) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """A random CLIP saved like longclip-B.pt: fp16, two [248, W] position tables."""
    state = {k: v.half() for k, v in open_clip.create_model(open_clip_arch(arch), force_context_length=248)
             .state_dict().items()}
    pos, res = torch.randn(248, 32).half(), torch.randn(248, 32).half()
    torch.save({**state, "positional_embedding": pos, "positional_embedding_res": res}, path)
    return state, pos, res


def test_longclip_checkpoint_merges_its_position_tables(tmp_path, tiny_arch, long_bench):
    state, pos, res = _longclip_checkpoint(tiny_arch, tmp_path / "longclip-B.pt")
    model, tok = load_for_eval({"kind": "longclip", "arch": tiny_arch, "path": str(tmp_path / "longclip-B.pt")})
    merged = model.positional_embedding.detach()
    assert merged.shape == (248, 32) and merged.dtype == torch.float32
    assert torch.equal(merged[:20], pos[:20].float()) and torch.equal(merged[20:], res[20:].float())
    assert torch.equal(model.token_embedding.weight.detach(), state["token_embedding.weight"].float())
    tokens = tok(["word " * 400])
    assert tok.context_length == 248 and tokens.shape == (1, 248) and tokens[0, -1] == 49407  # EOT kept
    _check_evaluates(model, tok, long_bench)
    state77 = open_clip.create_model(open_clip_arch(tiny_arch)).state_dict()  # plain CLIP: 77 positions
    torch.save(state77, tmp_path / "clip77.pt")
    with pytest.raises(ValueError, match=r"clip77.pt: Long-CLIP state dict does not match open_clip tiny-clip "
                                         r"\(context 248\): shape mismatches \(1\): positional_embedding"):
        load_for_eval({"kind": "longclip", "arch": tiny_arch, "path": str(tmp_path / "clip77.pt")})


def test_longclip_state_dict_errors_name_the_source():
    with pytest.raises(ValueError, match="ck.pt: field 'positional_embedding' missing"):
        longclip_state_dict({"logit_scale": torch.ones([])}, "ck.pt")
    bad = {"positional_embedding": torch.zeros(248, 4), "positional_embedding_res": torch.zeros(77, 4)}
    with pytest.raises(ValueError, match=r"ck.pt: positional_embedding \(248, 4\) and positional_embedding_res"):
        longclip_state_dict(bad, "ck.pt")


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="model: unknown key 'weights'"):
        load_for_eval({"kind": "openclip", "path": "x", "weights": "y"})
    with pytest.raises(ValueError, match="model: field 'path' missing"):
        load_for_eval({"kind": "openclip"})
    with pytest.raises(ValueError, match="model kind 'jit': not one of lotlip, release, openclip, longclip"):
        load_for_eval({"kind": "jit", "path": "x"})
    with pytest.raises(FileNotFoundError, match="nope.pt: longclip weights not found"):
        load_for_eval({"kind": "longclip", "path": str(tmp_path / "nope.pt")})


# --- CLI evaluate-model, table, reference columns --------------------------------------------------------

def _run_cli(*argv: str) -> None:
    args = build_parser().parse_args(list(argv))
    args.func(args)


def test_cli_evaluate_model_then_reference_table(tmp_path, tiny_arch, long_bench):
    torch.save(open_clip.create_model(open_clip_arch(tiny_arch)).state_dict(), tmp_path / "w.bin")
    out = tmp_path / "eval" / "clip" / "u.json"
    _run_cli("evaluate-model", "--model", "clip", "--spec", json.dumps({"kind": "openclip", "arch": tiny_arch}),
             "--weights", str(tmp_path / "w.bin"), "--name", "u", "--benchmark", str(long_bench),
             "--batch-size", "4", "--threads", "1", "--out", str(out))
    result = json.loads(out.read_text())
    assert (result["run"], result["benchmark"], result["kind"], result["n_images"]) == ("clip", "u", "long", 6)
    assert result["config"]["model"]["kind"] == "openclip" and len(result["weights_sha256"]) == 64
    write_table(build_table("long_retrieval", [out]), tmp_path / "table_long_retrieval.csv")
    ref = {"source": "test", "metrics": ["i2t_r1", "t2i_r1"], "values": {"clip": {"u": [10.0, 20.0]}}}
    _run_cli("reference-table", "--reference", json.dumps(ref), "--out", str(tmp_path / "vs.csv"),
             str(tmp_path / "table_long_retrieval.csv"))
    df = pd.read_csv(tmp_path / "vs.csv")
    assert list(df.columns[:8]) == ["run", "benchmark", "i2t_r1", "i2t_r1_ref", "i2t_r1_diff", "t2i_r1",
                                    "t2i_r1_ref", "t2i_r1_diff"]
    assert df.loc[0, "i2t_r1_diff"] == pytest.approx(result["i2t_r1"] - 10.0)
    assert df.loc[0, "t2i_r1_ref"] == 20.0 and (tmp_path / "vs.md").is_file()
    with pytest.raises(ValueError, match="--spec: not valid JSON"):
        _run_cli("evaluate-model", "--model", "m", "--spec", "{", "--weights", "w", "--name", "u",
                 "--benchmark", str(long_bench), "--out", str(out))


def test_with_reference_leaves_rows_without_reference_blank():
    df = pd.DataFrame({"run": ["a", "b", "a"], "benchmark": ["dci", "dci", "iiw"], "i2t_r1": [50.0, 40.0, 1.0],
                       "t2i_r1": [45.0, 30.0, 2.0], "seed": [0, 0, 0]})
    out = with_reference(df, {"a": {"dci": [43.06, 40.32]}}, ["i2t_r1", "t2i_r1"])
    assert list(out.columns) == ["run", "benchmark", "i2t_r1", "i2t_r1_ref", "i2t_r1_diff", "t2i_r1", "t2i_r1_ref",
                                 "t2i_r1_diff", "seed"]
    assert out.loc[0, "i2t_r1_diff"] == 6.94 and out.loc[0, "t2i_r1_diff"] == 4.68
    assert out.loc[1:, "i2t_r1_ref"].isna().all() and out.loc[1:, "t2i_r1_diff"].isna().all()
    assert list(out["i2t_r1"]) == [50.0, 40.0, 1.0]  # ours untouched
    with pytest.raises(ValueError, match=r"reference.values.a.dci: 1 numbers for 2 metrics"):
        with_reference(df, {"a": {"dci": [1.0]}}, ["i2t_r1", "t2i_r1"])
    with pytest.raises(ValueError, match="reference.metrics: table has no column 'top1'"):
        with_reference(df, {}, ["top1"])


# --- lotlip.plan (what the workflow builds) --------------------------------------------------------------

def _cfg(**over):
    bench = SimpleNamespace
    cfg = SimpleNamespace(
        benchmarks={"dci_syn": bench(kind="long", source="synthetic"),
                    "iiw": bench(kind="long", source="iiw", path=None, check_count=True),
                    "coco": bench(kind="short", source="mscoco-5k", path=None, check_count=False),
                    "inet": bench(kind="zeroshot", source="imagenet", path="/data/in val", check_count=True)},
        experiments={"short": None, "lotlip": None},
        models={"clip": SimpleNamespace(kind="openclip", arch="ViT-B-16-quickgelu", context_length=None, sha256=None,
                                        url="https://h.f/timm/x/resolve/main/open_clip_model.safetensors?dl=1"),
                "ours": SimpleNamespace(kind="lotlip", arch="", context_length=None, url=None, sha256=None,
                                        path="results/checkpoints/lotlip/model.pt")},
        select=SimpleNamespace(benchmarks=["iiw", "coco", "inet"], experiments=[], models=None),
        reference=SimpleNamespace(source="s", metrics=["i2t_r1", "t2i_r1"], values={"clip": {"iiw": [1.0, 2.0]}}),
        eval=SimpleNamespace(batch_size=64), train=SimpleNamespace(device="cuda", threads=4),
        world=SimpleNamespace(source="synthetic"))
    for key, value in over.items():
        setattr(cfg, key, value)
    return cfg


def test_plan_for_a_release_tier_config():
    cfg = _cfg()
    assert plan.benchmarks(cfg) == ["coco", "iiw", "inet"] and plan.trained_runs(cfg) == []
    assert plan.eval_models(cfg) == ["clip", "ours"] and plan.synthetic_benchmarks(cfg) == []
    assert plan.fetched_datasets(cfg) == ["dci", "docci", "iiw", "mscoco"]  # imagenet: user-supplied
    assert plan.fetch_markers(cfg, "iiw") == [f"resources/data/.fetched/{d}.json" for d in ("iiw", "dci", "docci")]
    assert plan.import_args(cfg, "inet") == "--source imagenet --path '/data/in val'"
    assert plan.import_args(cfg, "coco") == "--source mscoco-5k --no-check-count"
    assert plan.model_weights(cfg, "clip") == "resources/models/clip/open_clip_model.safetensors"
    assert plan.model_weights(cfg, "ours") == "results/checkpoints/lotlip/model.pt"
    assert plan.downloaded_models(cfg) == ["clip"]
    assert json.loads(plan.model_spec_json(cfg, "clip")) == {"kind": "openclip", "arch": "ViT-B-16-quickgelu",
                                                              "context_length": None}
    assert plan.eval_args(cfg) == "--batch-size 64 --device cuda --threads 4"
    assert json.loads(plan.reference_json(cfg))["values"] == {"clip": {"iiw": [1.0, 2.0]}}
    assert plan.reference_tables(cfg, TABLES) == ["long_retrieval"]
    unselected = _cfg(select=SimpleNamespace(benchmarks=["coco"], experiments=None, models=None))
    assert plan.reference_tables(unselected, TABLES) == []


def test_alternation_matches_exactly_the_names():
    assert re.fullmatch(plan.alternation(["a-1", "b"]), "a-1") and not re.fullmatch(plan.alternation(["a"]), "ab")
    assert not re.fullmatch(plan.alternation([]), "") and not re.fullmatch(plan.alternation([]), "x")


# --- the workflow (needs the config / cli / common.smk / Snakefile edits) --------------------------------

OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1", "no_proxy": "", "NO_PROXY": ""}


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = env_with_bin(**OFFLINE)
    cmd = snakemake_cmd(workdir, *args)
    return run_child(cmd, capture_output=True, text=True, env=env, timeout=900)


@needs_schema
@pytest.mark.parametrize(("tier", "expected"), [
    ("release_eval", {"fetch": 7, "fetch_model": 5, "import_benchmark": 8, "evaluate_model": 40, "table": 2,
                      "table_reference": 1, "paper_table": 1, "claims": 1, "table_html": 4, "claims_html": 1,
                      "landing": 1, "all": 1}),
    ("paper", {"fetch": 9, "import_benchmark": 8, "images": 1, "relabel": 1, "shards": 1, "train": 4,
               "evaluate": 4, "table": 2, "table_dataset_stats": 1, "paper_table": 6, "claims": 1, "table_html": 9,
               "claims_html": 1, "landing": 1, "all": 1})])
def test_real_tier_plans_offline(tier, expected, tmp_path):
    done = _snakemake(tmp_path, "-n", "all", "--configfile", str(REPO / "config" / "config.yaml"),
                      str(REPO / "config" / f"{tier}.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert planned_jobs(done.stdout + done.stderr) == expected
    assert not (tmp_path / "resources").exists()  # a plan downloads nothing


def _release_fixture(tmp_path: Path, arch: str) -> Path:
    """Fetched-looking data (urban1k, mscoco + markers), three models' weights and a tier override file."""
    data = tmp_path / "resources" / "data"
    _urban_layout(data)
    _coco_layout(data)
    for name in ("urban1k", "mscoco"):
        (data / ".fetched").mkdir(exist_ok=True)
        (data / ".fetched" / f"{name}.json").write_text("{}")
    torch.save(open_clip.create_model(open_clip_arch(arch)).state_dict(), tmp_path / "clip.bin")
    _longclip_checkpoint(arch, tmp_path / "longclip.pt")
    torch.save(create_model("lotlip_bert-tiny").state_dict(), tmp_path / "model.pt")
    override = {
        "select": {"benchmarks": ["u", "coco"], "experiments": []},
        "benchmarks": {"u": {"kind": "long", "source": "urban1k", "check_count": False},
                       "coco": {"kind": "short", "source": "mscoco-5k", "check_count": False}},
        "models": {"clip": {"kind": "openclip", "arch": arch, "path": str(tmp_path / "clip.bin")},
                   "lclip": {"kind": "longclip", "arch": arch, "path": str(tmp_path / "longclip.pt")},
                   "ours": {"kind": "release", "arch": "lotlip_bert-tiny", "path": str(tmp_path / "model.pt")}},
        "reference": {"source": "test", "values": {"clip": {"u": [10.0, 20.0]}}},
        "train": {"threads": 1}, "eval": {"batch_size": 4}}
    (tmp_path / "tier.yaml").write_text(json.dumps(override))
    return tmp_path / "tier.yaml"


@needs_schema
@pytest.mark.slow
def test_release_tier_runs_end_to_end_on_fixtures(tmp_path, tiny_arch):
    tier = _release_fixture(tmp_path, tiny_arch)
    done = _snakemake(tmp_path, "all", "--configfile", str(REPO / "config" / "config.yaml"), str(tier))
    assert done.returncode == 0, done.stderr[-3000:]
    long = pd.read_csv(tmp_path / "results" / "table_long_retrieval.csv")
    assert sorted(zip(long["run"], long["benchmark"], strict=True)) == [("clip", "u"), ("lclip", "u"), ("ours", "u")]
    short = pd.read_csv(tmp_path / "results" / "table_short_tasks.csv")
    assert sorted(short["run"]) == ["clip", "lclip", "ours"] and set(short["n_images"]) == {2}
    vs = pd.read_csv(tmp_path / "results" / "table_long_retrieval_vs_reference.csv").set_index("run")
    assert vs.loc["clip", "i2t_r1_ref"] == 10.0 and pd.isna(vs.loc["ours", "i2t_r1_ref"])
    assert vs.loc["clip", "t2i_r1_diff"] == pytest.approx(vs.loc["clip", "t2i_r1"] - 20.0)
    assert not (tmp_path / "results" / "table_dataset_stats.csv").exists()  # nothing trained in this tier
    again = _snakemake(tmp_path, "-n", "all", "--configfile", str(REPO / "config" / "config.yaml"), str(tier))
    assert "Nothing to be done" in again.stdout + again.stderr
    # round trip: `lotlip benchmark` on the same data and weights gives the tier's numbers
    spec = f"release:lotlip_bert-tiny@{tmp_path / 'model.pt'}"
    argv = [str(BIN / "lotlip"), "benchmark", "--model", spec, "--protocol", "urban1k,coco-5k", "--data-root",
            str(tmp_path / "resources" / "data"), "--no-check-count", "--name", "ours", "--batch-size", "4",
            "--threads", "1", "--out", str(tmp_path / "bench")]
    bench = run_child(argv, capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr[-3000:]
    for tier_name, protocol in (("u", "urban1k"), ("coco", "coco-5k")):
        ours = json.loads((tmp_path / "results" / "eval" / "ours" / f"{tier_name}.json").read_text())
        theirs = json.loads((tmp_path / "bench" / f"ours__{protocol}.json").read_text())["metrics"]
        assert (ours["i2t_r1"], ours["t2i_r1"]) == (theirs["text_retrieval_recall@1"],
                                                    theirs["image_retrieval_recall@1"]), protocol


@needs_schema
@pytest.mark.parametrize(("override", "message"), [
    ({"benchmarks": {"x": {"kind": "short", "source": "dci"}}},
     "benchmarks.x.kind: 'short' does not match source 'dci' (long)"),
    ({"benchmarks": {"x": {"kind": "zeroshot", "source": "imagenet"}}},
     "benchmarks.x.path: required by source 'imagenet'"),
    ({"benchmarks": {"x": {"source": "urban1k", "path": "/u"}}}, "benchmarks.x.path: not used by source 'urban1k'"),
    ({"benchmarks": {"x": {"source": "coco"}}}, "benchmarks.x.source: 'coco' is not one of synthetic, dci"),
    ({"models": {"m": {"kind": "openclip", "url": "https://h/w.bin", "path": "w.bin"}}},
     "models.m: set exactly one of url (downloaded) or path"),
    ({"models": {"lotlip": {"kind": "lotlip", "path": "w.pt"}}},
     "models.lotlip: the name is also a declared experiment"),
    ({"select": {"benchmarks": ["dci"]}}, "select.benchmarks: 'dci' is not declared under benchmarks"),
    ({"select": {"experiments": []}}, "select: nothing to evaluate"),
    ({"reference": {"values": {"clip": {"dci_syn": [1.0, 2.0]}}}},
     "reference.values.clip: not a declared experiment or model"),
    ({"reference": {"values": {"short": {"dci_syn": [1.0]}}}}, "reference.values.short.dci_syn: 1 numbers for 2"),
])
def test_release_tier_config_errors_name_the_key(override, message):
    with pytest.raises(lotlip_config.ConfigError, match=re.escape(message)):
        lotlip_config.load_config(REPO / "config" / "config.yaml", override)


@needs_schema
def test_tier_configs_validate():
    for tier in ("release_eval", "paper"):
        cfg = lotlip_config.load_config(REPO / "config" / "config.yaml", REPO / "config" / f"{tier}.yaml")
        assert plan.real_benchmarks(cfg) == ["coco5k", "dci", "flickr1k", "iiw", "imagenet", "sv10k", "sv1k",
                                             "urban1k"]
    assert plan.eval_models(cfg) == [] and plan.trained_runs(cfg) == ["long", "longclip", "lotlip", "short"]
    assert cfg.train.model == "lotlip_bert-ViT-B-16" and cfg.train.lr == 5e-4 and cfg.train.warmup_steps == 10000
    assert lotlip_config.MODEL_KINDS == MODEL_KINDS  # the schema's choices are the loader's kinds


@needs_schema
def test_image_init_waits_for_its_catalog_weights_or_names_the_local_file():
    cfg = lotlip_config.load_config(REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml")
    assert plan.image_init_inputs(cfg, "lotlip") == ["resources/data/.fetched/vit-b16-in21k.json"]
    assert "vit-b16-in21k" in plan.fetched_datasets(cfg)
    local = lotlip_config.load_config({"experiments": {"lit": {"method": "short", "image_init": "ckpt/v.pt"},
                                                       "plain": {"method": "short"}}})
    assert plan.image_init_inputs(local, "lit") == ["ckpt/v.pt"] and plan.image_init_inputs(local, "plain") == []
    assert "vit-b16-in21k" not in plan.fetched_datasets(local)
