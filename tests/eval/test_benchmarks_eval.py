import json

import pytest
import torch

from lotlip.config import BenchmarkConfig, WorldConfig
from lotlip.eval.runner import evaluate_benchmark
from lotlip.eval.short import multi_caption_recall, zero_shot_accuracy
from lotlip.io import read_jsonl
from lotlip.model import create_model, get_tokenizer
from lotlip.report.stats import dataset_stats
from lotlip.report.tables import build_table
from lotlip.world.build import build_benchmark, long_text
from lotlip.world.scene import salient_classes, sample_group, sample_scene


def test_groups_get_distinct_salient_classes_up_to_forty():
    salients = {(g[0].salient.colour, g[0].salient.shape) for g in
                (sample_group(0, i, 1, 3, 5) for i in range(40))}
    assert len(salients) == 40 == len(salient_classes())


@pytest.mark.parametrize("style", ["dci", "iiw", "sharegpt4v", "llava"])
def test_long_styles_write_distinct_long_texts(style):
    scene = sample_scene(0, "k", 5, 5)
    text = long_text(scene, style, 0)
    assert scene.salient.shape in text and len(text.split(". ")) >= 5
    others = {long_text(scene, s, 0) for s in ("dci", "iiw", "sharegpt4v", "llava") if s != style}
    assert text not in others


def test_benchmark_kinds_write_their_records(tmp_path):
    world = WorldConfig()
    build_benchmark(BenchmarkConfig(kind="short", n_groups=6, group_size=1, captions_per_image=5), world,
                    tmp_path / "short")
    build_benchmark(BenchmarkConfig(kind="zeroshot", n_groups=40, group_size=2), world, tmp_path / "zs")
    short = read_jsonl(tmp_path / "short" / "texts.jsonl")
    assert len(short) == 6 and all(len(set(r["texts"])) == 5 for r in short)
    zs_meta = json.loads((tmp_path / "zs" / "meta.json").read_text())
    zs = read_jsonl(tmp_path / "zs" / "texts.jsonl")
    assert len(zs_meta["classes"]) == 40 and len(zs) == 80
    assert sorted({r["label"] for r in zs}) == list(range(40))
    for r in zs:
        salient = next(o for o in r["scene"]["objects"] if o["salient"])
        assert zs_meta["classes"][r["label"]] == f"{salient['colour']} {salient['shape']}"


def test_multi_caption_recall_follows_the_coco_protocol():
    images = torch.eye(3)
    texts = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1], [0, 0.8, 0.2], [0.95, 0.05, 0]])
    owner = torch.tensor([0, 0, 1, 2, 2, 1])  # texts 4 and 5 look like another image
    m = multi_caption_recall(images, torch.nn.functional.normalize(texts, dim=-1), owner, ks=(1, 5))
    assert m["i2t_r1"] == 100.0  # each image's best text is one of its own
    assert m["t2i_r1"] == pytest.approx(100 * 4 / 6, abs=0.01)  # texts 4 and 5 miss
    assert m["i2t_r5"] == 100.0 and m["t2i_r5"] == 100.0
    swapped = multi_caption_recall(torch.eye(2), torch.tensor([[1.0, 0], [0.9, 0.1]]), torch.tensor([1, 0]))
    assert swapped["i2t_r1"] == 0.0 and swapped["t2i_r1"] == 50.0  # text 1 still finds image 0


def test_zero_shot_accuracy_top1_and_top5():
    classes = torch.eye(6)
    images = torch.eye(6)[[0, 1, 2, 3]]
    images[2] = torch.tensor([0.1, 0.2, 1.0, 0.3, 0.4, -1.0])  # class 5 ranks last
    labels = torch.tensor([0, 1, 5, 3])
    assert zero_shot_accuracy(images, classes, labels) == {"top1": 75.0, "top5": 75.0}


def test_every_kind_evaluates_and_tables_split_by_kind(tmp_path):
    model, tok = create_model("lotlip-tiny").eval(), get_tokenizer("lotlip-tiny")
    world = WorldConfig()
    results = []
    for name, cfg in {"long": BenchmarkConfig(n_groups=2, group_size=3),
                      "short": BenchmarkConfig(kind="short", n_groups=4, group_size=1),
                      "zs": BenchmarkConfig(kind="zeroshot", n_groups=40, group_size=1)}.items():
        build_benchmark(cfg, world, tmp_path / name)
        metrics = evaluate_benchmark(model, tok, tmp_path / name)
        assert metrics["kind"] == cfg.kind
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"run": "r", "benchmark": name, "seed": 0, "commit": "c",
                                    "lotlip_version": "v", **metrics}))
        results.append(path)
    long = build_table("long_retrieval", results)
    short = build_table("short_tasks", results)
    assert list(long["benchmark"]) == ["long"] and sorted(short["benchmark"]) == ["short", "zs"]
    assert "top1" in short.columns and "top1" not in long.columns
    with pytest.raises(ValueError, match="unknown"):
        build_table("table_99", results)


def test_dataset_stats_rows(tiny_world, tmp_path):
    world, captions, _ = tiny_world
    build_benchmark(BenchmarkConfig(n_groups=2, group_size=2), WorldConfig(), tmp_path / "dci_syn")
    df = dataset_stats(world, captions, [tmp_path / "dci_syn"], lambda t: len(t.split()))
    rows = df.set_index("dataset")
    assert list(rows.index) == ["train (raw)", *(f"train ({kind}, {c})" for c in ("instructblip", "llava", "sharegpt4v")
                                                 for kind in ("short", "long")), "dci_syn"]
    short = rows.loc["train (short, llava)"]
    assert short["n_texts"] == short["n_images"] == rows.loc["train (long, llava)", "n_images"]  # one per image
    assert short["subcaptions_per_text"] == 1.0  # the simulated captioners write a one-sentence short caption
    assert short["tokens_per_text"] < rows.loc["train (long, llava)", "tokens_per_text"]
    assert rows.loc["train (raw)", "subcaptions_per_text"] == 1.0
    assert rows.loc["dci_syn", "subcaptions_per_text"] >= 8
    assert rows.loc["train (long, sharegpt4v)", "tokens_per_text"] > rows.loc["train (raw)", "tokens_per_text"]
    assert list(df.columns) == ["dataset", "kind", "n_images", "n_texts", "subcaptions_per_text", "tokens_per_text",
                                "tokens_p10", "tokens_median", "tokens_p90", "tokens_max", "over_77_pct"]
    for _, row in rows.iterrows():
        assert row["tokens_p10"] <= row["tokens_median"] <= row["tokens_p90"] <= row["tokens_max"]
        assert 0.0 <= row["over_77_pct"] <= 100.0
    assert rows.loc["train (raw)", "over_77_pct"] == 0.0  # alt-text is short
    dci = [len(r["text"].split()) for r in read_jsonl(tmp_path / "dci_syn" / "texts.jsonl")]
    assert rows.loc["dci_syn", "tokens_max"] == max(dci)
    assert rows.loc["dci_syn", "over_77_pct"] == round(100 * sum(n > 77 for n in dci) / len(dci), 1)
