"""The stage functions (lotlip.stages) called directly: logic the command line only wraps."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lotlip.config import ConfigError, PaperFigureConfig, RelabelConfig, WorldConfig, load_config
from lotlip.data.img2dataset import SOURCE_FILE
from lotlip.stages import evaluate, fetch, relabel, report, train


def test_sweep_gflops_gives_one_point_per_run_rising_with_the_token_limit():
    points = {run: {"x": ctx, "model": "lotlip-tiny", "corner_tokens": 2, "context": ctx}
              for run, ctx in (("short", 16), ("long", 48))}
    gflops = report.sweep_gflops(points)
    assert list(gflops) == [16, 48]
    assert 0 < gflops[16] < gflops[48]


def test_maps_summary_averages_each_runs_shares():
    entries = [{"mentioned_share": 0.5, "salient_share": 0.1}, {"mentioned_share": 0.25, "salient_share": 0.2}]
    assert report.maps_summary("a", "a/model.pt", entries) == {
        "run": "a", "checkpoint": "a/model.pt", "scenes": 2, "mentioned_share": 0.375, "salient_share": 0.15}


def test_maps_figure_needs_a_benchmark(tmp_path):
    with pytest.raises(ConfigError, match="figure --benchmark: required by a maps figure"):
        report.maps_figure(PaperFigureConfig(kind="maps", caption="c"), {}, None, tmp_path / "f.png")


def test_landing_refuses_a_caption_without_a_figure(tmp_path):
    with pytest.raises(ValueError, match="landing --figure-caption: given without --figure"):
        report.landing_page(tmp_path / "landing.html", figure_caption="maps")
    assert not (tmp_path / "landing.html").exists()


def test_fetch_lock_serialises_two_fetchers_of_one_root(tmp_path, monkeypatch):
    import lotlip.catalog
    import lotlip.data.download

    spans: list[tuple[float, float]] = []

    def slow_fetch(name, root, catalog):
        start = time.monotonic()
        time.sleep(0.2)
        spans.append((start, time.monotonic()))
        return [Path(root) / name]

    monkeypatch.setattr(lotlip.catalog, "load_catalog", lambda path: {"a": {}, "b": {"manual": ["unzip it"]}})
    monkeypatch.setattr(lotlip.data.download, "fetch", slow_fetch)
    root = tmp_path / "data"
    threads = [threading.Thread(target=fetch.fetch_dataset, args=(name, root, tmp_path / f"{name}.json"),
                                kwargs={"catalog": tmp_path / "catalog.yaml"}) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    (s1, e1), (s2, e2) = sorted(spans)
    assert e1 <= s2, "the second fetcher started while the first held the lock"
    assert (root / fetch.LOCK_NAME).is_file() and (tmp_path / "b.json").is_file()


def test_fetch_names_the_catalog_of_an_unknown_dataset(tmp_path, monkeypatch):
    import lotlip.catalog

    monkeypatch.setattr(lotlip.catalog, "load_catalog", lambda path: {"a": {}})
    with pytest.raises(ValueError, match=r"cat\.yaml: no dataset 'zz' \(known: a\)"):
        fetch.fetch_dataset("zz", tmp_path, tmp_path / "m.json", tmp_path / "cat.yaml")
    assert not (tmp_path / fetch.LOCK_NAME).exists()  # refused before taking the lock


def test_evaluate_needs_one_benchmark_and_output_per_name(tmp_path):
    with pytest.raises(ConfigError, match="2 --name, 1 --benchmark and 2 --out values; one of each"):
        evaluate.check_lengths(["a", "b"], [tmp_path], [tmp_path / "a.json", tmp_path / "b.json"])
    with pytest.raises(ConfigError, match="1 --name, 1 --benchmark and 0 --out values"):  # before any load
        evaluate.evaluate_checkpoint(load_config({}), "r", tmp_path / "missing.pt", ["a"], [tmp_path], [])
    evaluate.check_lengths(["a"], [tmp_path], [tmp_path / "a.json"])


def test_run_protocols_needs_a_set_to_evaluate(tmp_path):
    with pytest.raises(ValueError, match="--protocol or --benchmark-dir: name at least one"):
        evaluate.run_protocols("openclip@w.bin", None, tmp_path, [], threads=1)


def test_relabel_refuses_a_captioning_backend_on_img2dataset_images(tmp_path):
    (tmp_path / SOURCE_FILE).write_text('{"samples_per_shard": 10}')
    for backend in ("simulated", "hf"):
        with pytest.raises(ConfigError, match=f"relabel.backend: '{backend}' cannot caption .* use precomputed"):
            relabel.world_images(tmp_path, backend)


def test_relabel_sees_the_scenes_of_a_synthetic_world(tmp_path):
    from lotlip.world.build import build_train_split

    build_train_split(WorldConfig(n_train=2), tmp_path / "world")
    scenes = relabel.world_images(tmp_path / "world", "simulated")
    assert len(scenes) == 2 and all(s.objects for s in scenes)


def test_relabel_options_per_backend(tmp_path):
    out = tmp_path / "captions.jsonl"
    hf = relabel.backend_options(RelabelConfig(backend="hf"), tmp_path / "world", out)
    assert hf["images_dir"] == tmp_path / "world" / "images" and hf["work_dir"] == tmp_path / "captions.jsonl.work"
    assert relabel.backend_options(RelabelConfig(), tmp_path / "world", out) == {}
    assert "path" in relabel.backend_options(RelabelConfig(backend="precomputed"), tmp_path / "world", out)


def test_launch_settings_executor_overrides_the_config():
    assert train.launch_settings('{"executor": "local", "timeout_min": 5}', "debug").executor == "debug"
    assert train.launch_settings({"executor": "local"}).executor == "local"
    with pytest.raises(ConfigError, match="--launch: not valid JSON"):
        train.launch_settings("{", None)


def test_stats_table_counts_the_models_tokens_with_start_and_end(tiny_cfg, tiny_world, tmp_path):
    from lotlip.config import BenchmarkConfig
    from lotlip.io import read_jsonl
    from lotlip.model import get_tokenizer
    from lotlip.world.build import build_benchmark

    world, captions, _ = tiny_world
    build_benchmark(BenchmarkConfig(kind="long", style="iiw", n_groups=2, group_size=3), tiny_cfg.world,
                    tmp_path / "iiw_syn")
    df = report.stats_table(tiny_cfg, world, captions, [tmp_path / "iiw_syn"], tmp_path / "stats.csv")
    row = df.set_index("dataset").loc["iiw_syn"]
    tokenizer = get_tokenizer(tiny_cfg.train.model)
    counts = [tokenizer.count_tokens(r["text"]) + 2 for r in read_jsonl(tmp_path / "iiw_syn" / "texts.jsonl")]
    assert row["tokens_max"] == max(counts) and row["tokens_per_text"] == round(sum(counts) / len(counts), 2)
    assert (tmp_path / "stats.csv").exists() and (tmp_path / "stats.md").exists()
