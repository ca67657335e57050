"""``lotlip benchmark``: CLIP_benchmark JSONs + merged CSV, the same numbers as ``evaluate-model`` (the release
tier's command), model specs, precision, and bad input reported in one line before any encoding."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from lotlip.cli import main
from lotlip.eval import harness
from lotlip.eval.model_spec import default_name, parse_model_spec
from lotlip.eval.protocols import PROTOCOLS
from lotlip.model import create_model
from tests.protocol_fixtures import build_data_root

ARCH = "lotlip_bert-tiny"
SHAPE = {"dataset", "model", "pretrained", "task", "metrics", "language"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return build_data_root(tmp_path_factory.mktemp("bench_data"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "model.pt"
    torch.save(create_model(ARCH).state_dict(), path)  # the release's format: a plain state dict
    return path


def _bench(data_root: Path, weights: Path, out: Path, protocols: str, *extra: str) -> int:
    return main(["benchmark", "--model", f"release:{ARCH}@{weights}", "--protocol", protocols, "--out", str(out),
                 "--data-root", str(data_root), "--batch-size", "3", "--threads", "1", "--no-check-count", *extra])


def test_spec_syntax():
    assert parse_model_spec("openclip:ViT-B-16-quickgelu@/w/a@b.bin") == {
        "kind": "openclip", "arch": "ViT-B-16-quickgelu", "path": "/w/a@b.bin"}
    assert parse_model_spec("longclip@longclip-B.pt") == {"kind": "longclip", "arch": "", "path": "longclip-B.pt"}
    assert default_name(parse_model_spec("release:lotlip_bert-ViT-B-16@/w/model.pt")) == \
        "release-lotlip_bert-ViT-B-16-model"
    for bad, why in [("clip@x.pt", "unknown kind 'clip'"), ("openclip@x.pt", "openclip needs an architecture"),
                     ("lotlip:lotlip-tiny@x.pt", "name their architecture"), ("model.pt", "expected KIND")]:
        with pytest.raises(ValueError, match=why):
            parse_model_spec(bad)


def test_clip_benchmark_shape_for_each_task():
    result = harness.clip_benchmark_result
    long = result("dci", PROTOCOLS["dci"].clip_benchmark_task, {"kind": "long", "i2t_r1": 50.0, "t2i_r1": 40.0,
                                                                "n_images": 7}, "m", "w.pt")
    assert long == {"dataset": "dci", "model": "m", "pretrained": "w.pt", "task": "zeroshot_retrieval",
                    "metrics": {"text_retrieval_recall@1": 50.0, "image_retrieval_recall@1": 40.0}, "language": "en"}
    short = result("coco-5k", "zeroshot_retrieval", {"i2t_r1": 1, "t2i_r1": 2, "i2t_r5": 3, "t2i_r5": 4}, "m", "w")
    assert set(short["metrics"]) == {f"{d}_retrieval_recall@{k}" for d in ("image", "text") for k in (1, 5)}
    zs = result("imagenet", PROTOCOLS["imagenet"].clip_benchmark_task, {"top1": 1.0, "top5": 2.0, "n_classes": 3},
                "m", "w")
    assert zs["task"] == "zeroshot_classification" and zs["metrics"] == {"acc1": 1.0, "acc5": 2.0}


def test_benchmark_round_trip_matches_evaluate_model(data_root, weights, tmp_path):
    out = tmp_path / "out"
    assert _bench(data_root, weights, out, "urban1k,coco-5k", "--name", "tiny") == 0
    results = {p: json.loads((out / f"tiny__{p}.json").read_text()) for p in ("urban1k", "coco-5k")}
    for protocol, result in results.items():
        assert set(result) == SHAPE and result["dataset"] == protocol and result["language"] == "en"
        assert result["model"] == ARCH and result["pretrained"] == str(weights)
        assert all(0.0 <= v <= 100.0 for v in result["metrics"].values())
    assert set(results["coco-5k"]["metrics"]) == {f"{d}_retrieval_recall@{k}" for d in ("image", "text")
                                                  for k in (1, 5)}
    csv = pd.read_csv(out / "results.csv")
    assert sorted(csv["dataset"]) == ["coco-5k", "urban1k"] and set(csv["name"]) == {"tiny"}
    speed = json.loads((out / "tiny__urban1k.speed.json").read_text())
    assert speed["images_per_s"] > 0 and speed["texts_per_s"] > 0 and speed["precision"] == "fp32"
    assert (csv["images_per_s"] > 0).all() and (csv["texts_per_s"] > 0).all()

    spec = json.dumps({"kind": "release", "arch": ARCH})
    for protocol, source in (("urban1k", "urban1k"), ("coco-5k", "mscoco-5k")):
        bench = tmp_path / f"bench_{protocol}"
        assert main(["import-benchmark", "--source", source, "--data-root", str(data_root), "--out", str(bench),
                     "--no-check-count"]) == 0
        assert main(["evaluate-model", "--model", "tiny", "--spec", spec, "--weights", str(weights), "--name",
                     protocol, "--benchmark", str(bench), "--batch-size", "5", "--threads", "1",
                     "--out", str(tmp_path / f"{protocol}.json")]) == 0
        ours = json.loads((tmp_path / f"{protocol}.json").read_text())
        metrics = results[protocol]["metrics"]
        assert ours["i2t_r1"] == metrics["text_retrieval_recall@1"]
        assert ours["t2i_r1"] == metrics["image_retrieval_recall@1"]
        if protocol == "coco-5k":
            assert (ours["i2t_r5"], ours["t2i_r5"]) == (metrics["text_retrieval_recall@5"],
                                                        metrics["image_retrieval_recall@5"])


def test_bf16_runs_and_amp_needs_cuda(data_root, weights, tmp_path, capsys):
    assert _bench(data_root, weights, tmp_path / "bf16", "urban1k", "--precision", "bf16", "--name", "t") == 0
    result = json.loads((tmp_path / "bf16" / "t__urban1k.json").read_text())
    assert all(0.0 <= v <= 100.0 for v in result["metrics"].values())
    assert "images: 100%" in capsys.readouterr().err  # the progress bars
    assert _bench(data_root, weights, tmp_path / "amp", "urban1k", "--precision", "amp") == 2
    assert capsys.readouterr().err.strip() == ("lotlip benchmark: error: --precision amp needs a CUDA device, not "
                                               "cpu; use bf16 or fp32")


def _one_line_error(capsys, match: str) -> None:
    lines = capsys.readouterr().err.strip().splitlines()  # progress bars may precede the error
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1 and errors[0] == lines[-1], lines
    assert lines[-1].startswith("lotlip benchmark: error: ") and match in lines[-1], lines[-1]


@pytest.fixture
def no_encoding(monkeypatch):
    """Fail the test if anything is encoded."""
    def refuse(*args, **kwargs):
        raise AssertionError("encoding started before the bad input was reported")
    monkeypatch.setattr("lotlip.eval.runner.encode_images", refuse)
    monkeypatch.setattr("lotlip.eval.retrieval.encode_images", refuse)


def test_bad_input_is_one_line_before_any_encoding(data_root, weights, tmp_path, capsys, no_encoding):
    out = tmp_path / "out"
    assert _bench(data_root, weights, out, "urban1k,long-dci") == 2
    _one_line_error(capsys, "unknown protocol 'long-dci'")
    assert main(["benchmark", "--model", f"clip:{ARCH}@{weights}", "--protocol", "dci", "--out", str(out)]) == 2
    _one_line_error(capsys, "unknown kind 'clip'")
    assert _bench(tmp_path / "empty", weights, out, "urban1k") == 2
    _one_line_error(capsys, "no caption in it")
    assert _bench(data_root, tmp_path / "absent.pt", out, "urban1k") == 2
    _one_line_error(capsys, "absent.pt: weights file not found")
    assert main(["benchmark", "--model", "openclip:ViT-B-16-quickgelu@nosuchtag", "--protocol", "urban1k",
                 "--data-root", str(data_root), "--out", str(out), "--no-check-count"]) == 2
    _one_line_error(capsys, "nosuchtag: weights file not found (nor an open_clip pretrained tag of ViT-B-16-quickgelu)")
    assert main(["benchmark", "--model", "openclip:ViT-B-16@openai", "--protocol", "urban1k", "--data-root",
                 str(data_root), "--out", str(out), "--no-check-count"]) == 2
    _one_line_error(capsys, "use openclip:ViT-B-16-quickgelu@openai")
    wrong = tmp_path / "wrong.pt"
    torch.save(create_model("lotlip-tiny").state_dict(), wrong)
    assert _bench(data_root, wrong, out, "urban1k") == 2
    _one_line_error(capsys, "wrong.pt: state dict does not match the model")
    assert not list(out.glob("*.json")) if out.exists() else True


def test_missing_image_is_named(data_root, weights, tmp_path, capsys, no_encoding):
    root = tmp_path / "data"
    (root / "urban1k" / "Urban1k" / "image").mkdir(parents=True)
    (root / "urban1k" / "Urban1k" / "caption").mkdir()
    (root / "urban1k" / "Urban1k" / "caption" / "1.txt").write_text("item 1\n")
    assert _bench(root, weights, tmp_path / "out", "urban1k") == 2
    _one_line_error(capsys, "1.txt: image")


def test_undecodable_image_is_named_not_skipped(data_root, weights, tmp_path, capsys):
    root = tmp_path / "data"
    base = root / "urban1k" / "Urban1k"
    (base / "image").mkdir(parents=True)
    (base / "caption").mkdir()
    for i in (1, 2):
        (base / "caption" / f"{i}.txt").write_text(f"item {i}\n")
    (base / "image" / "1.jpg").write_bytes((data_root / "urban1k" / "Urban1k" / "image" / "1.jpg").read_bytes())
    (base / "image" / "2.jpg").write_bytes(b"not a jpeg")
    assert _bench(root, weights, tmp_path / "out", "urban1k") == 2
    _one_line_error(capsys, f"{base / 'image' / '2.jpg'}: image does not decode (cannot identify image file)")


def test_merged_table_with_reference_columns_and_source(tmp_path):
    from lotlip.eval.references import load_references
    from tests.conftest import REPO

    reference = load_references(REPO / "config" / "release_eval.yaml")
    assert reference["metrics"] == ["text_retrieval_recall@1", "image_retrieval_recall@1"]
    assert reference["values"]["lotlip_b16"]["sharegpt4v-10k"] == [88.40, 82.72]  # benchmark sv10k -> protocol
    assert reference["source"].startswith("official LoTLIP README")
    for name, protocol, metrics in [("lotlip_b16", "urban1k", {"text_retrieval_recall@1": 90.0,
                                                               "image_retrieval_recall@1": 80.0}),
                                    ("lotlip_b16", "coco-5k", {"text_retrieval_recall@1": 50.0,
                                                               "image_retrieval_recall@1": 40.0}),
                                    ("mine", "urban1k", {"text_retrieval_recall@1": 1.0,
                                                         "image_retrieval_recall@1": 2.0})]:
        result = harness.clip_benchmark_result(protocol, "zeroshot_retrieval", {}, "m", "w") | {"metrics": metrics}
        (tmp_path / f"{name}__{protocol}.json").write_text(json.dumps(result))
    df = pd.read_csv(harness.write_merged_csv(tmp_path, reference))
    rows = {(r["name"], r["dataset"]): r for r in df.to_dict("records")}
    hit = rows[("lotlip_b16", "urban1k")]
    assert (hit["text_retrieval_recall@1_ref"], hit["text_retrieval_recall@1_diff"]) == (88.8, 1.2)
    assert (hit["image_retrieval_recall@1_ref"], hit["image_retrieval_recall@1_diff"]) == (84.8, -4.8)
    assert hit["ref_source"] == reference["source"]
    assert pd.isna(rows[("lotlip_b16", "coco-5k")]["text_retrieval_recall@1_ref"])  # no published number
    assert pd.isna(rows[("mine", "urban1k")]["ref_source"])


def test_benchmark_dirs_evaluate_synthetic_sets_too(weights, tmp_path, capsys):
    from lotlip.config import load_config
    from lotlip.world.build import build_benchmark
    from tests.conftest import TINY

    cfg = load_config({**TINY, "benchmarks": {
        "dci_syn": {"n_groups": 2, "group_size": 3},
        "coco_syn": {"kind": "short", "n_groups": 6, "group_size": 1, "captions_per_image": 5, "seed": 4000},
        "imagenet_syn": {"kind": "zeroshot", "n_groups": 4, "group_size": 2, "seed": 5000}}})
    dirs = {}
    for bench in ("dci_syn", "coco_syn", "imagenet_syn"):
        dirs[bench] = tmp_path / bench
        build_benchmark(cfg.benchmarks[bench], cfg.world, dirs[bench])
    argv = ["benchmark", "--model", f"release:{ARCH}@{weights}", "--out", str(tmp_path / "out"), "--threads", "1",
            "--name", "tiny"] + [f"--benchmark-dir={k}={v}" for k, v in dirs.items()]
    assert main(argv) == 0
    results = {b: json.loads((tmp_path / "out" / f"tiny__{b}.json").read_text()) for b in dirs}
    assert results["dci_syn"]["task"] == "zeroshot_retrieval" and set(results["dci_syn"]) == SHAPE
    assert set(results["coco_syn"]["metrics"]) == {f"{d}_retrieval_recall@{k}" for d in ("image", "text")
                                                   for k in (1, 5)}
    assert results["imagenet_syn"]["task"] == "zeroshot_classification"
    assert set(results["imagenet_syn"]["metrics"]) == {"acc1", "acc5"}
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 3
    capsys.readouterr()
    assert main(argv[:-3] + [f"--benchmark-dir=x={tmp_path / 'nowhere'}"]) == 2
    _one_line_error(capsys, "--benchmark-dir x:")
    assert main(argv[:-3]) == 2
    _one_line_error(capsys, "--protocol or --benchmark-dir")

