"""Real evaluation sets: tiny fixtures in their published layouts are served on 127.0.0.1, fetched, imported as
benchmark folders (image paths, no copies) and evaluated with a random-init model through the runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lotlip.catalog import SOURCES
from lotlip.cli import build_parser
from lotlip.data import benchmarks
from lotlip.data.import_real import import_benchmark
from lotlip.eval.retrieval import image_paths
from lotlip.eval.runner import evaluate_benchmark
from lotlip.io import read_jsonl
from lotlip.model import create_model, get_tokenizer
from tests.data.test_benchmark_loaders import (
    _dci_sources,
    _docci_sources,
    _fetch,
    _image_id,
    _jpg,
    _jsonl,
    _karpathy,
    _share4v_entry,
    _spec,
    _tar,
    _zip,
)

pytest_plugins = ["tests.http_fixture"]


@pytest.fixture(scope="module")
def tiny_model():
    return create_model("lotlip-tiny").eval(), get_tokenizer("lotlip-tiny")


# --- fixture sources per real set (catalog files as config/datasets.yaml lays them out) ------------------

def _iiw_files(server) -> list[dict]:
    iiw = {"IIW-400": [{"image/key": f"aar_test_{i:05d}", "IIW": f"Painting of item {i}.\n\nMore."} for i in (13, 14)],
           "DCI_Test": [{"image": "sa_5.jpg", "IIW": "Balcony with item 5."}],
           "DOCCI_Test": [{"image": "test_00008", "IIW": "A view: item 8</s>wide"},
                          {"image": "test_00012", "IIW": "Kept as train item 12."}]}
    iiw_files = [_spec(server, f"{k}/data.jsonl", _jsonl(v), dest=f"iiw/{k}/data.jsonl") for k, v in iiw.items()]
    return _dci_sources(server) + _docci_sources(server) + iiw_files


def _share4v_files(server, n: int = 1000) -> list[dict]:
    entries = [_share4v_entry(i) | {"image": f"sam/images/sa_{i % 12}.jpg"} for i in range(n)]
    return [_spec(server, "share4v_sam_10k.json", json.dumps(entries).encode(), dest="sharegpt4v/share4v_sam_10k.json"),
            _spec(server, "sa_000000.tar", _tar({f"sa_{i}.jpg": _jpg(i) for i in range(12)}, gz=False),
                  extract_to="sa1b/sa_000000")]


def _urban_files(server) -> list[dict]:
    members = {f"Urban1k/image/{i}.jpg": _jpg(i) for i in range(1, 13)}
    members |= {f"Urban1k/caption/{i}.txt": f"A street with item {i}. Cars.\nIgnored.\n".encode() for i in range(1, 13)}
    return [_spec(server, "Urban1k.zip", _zip(members), extract_to="urban1k")]


def _karpathy_zip(server) -> dict:
    coco = _karpathy("coco", [("test", 1, 5), ("train", 2, 5), ("test", 3, 7)], "val2014")
    flickr = _karpathy("flickr30k", [("test", 5, 5), ("val", 6, 5), ("test", 7, 5)], None)
    data = _zip({"dataset_coco.json": json.dumps(coco).encode(), "dataset_flickr30k.json": json.dumps(flickr).encode()})
    return _spec(server, "caption_datasets.zip", data, extract_to="karpathy")


def _coco_files(server) -> list[dict]:
    val2014 = _zip({f"val2014/COCO_val2014_{i:012d}.jpg": _jpg(i) for i in range(1, 4)})
    return [_karpathy_zip(server), _spec(server, "val2014.zip", val2014, extract_to="coco")]


def _flickr_files(server) -> list[dict]:
    images = _tar({f"flickr30k-images/{1000 + i}.jpg": _jpg(i) for i in range(5, 8)})
    return [_karpathy_zip(server), _spec(server, "flickr30k-images.tar.gz", images, extract_to="flickr30k")]


def _flickr_full_files(server) -> list[dict]:
    """Flickr30k's official archive: the jpgs and the token file (Long-CLIP's protocol reads all of it)."""
    token = "".join(f"{1000 + i}.jpg#{k}\tA short caption {k} of item {i}.\n" for i in (5, 7) for k in range(5))
    members = {f"flickr30k-images/{1000 + i}.jpg": _jpg(i) for i in (5, 7)}
    members["flickr30k-images/results_20130124.token"] = token.encode()
    return [_spec(server, "flickr30k.tar.gz", _tar(members), extract_to="flickr30k")]


FILES = {"dci": _dci_sources, "iiw": _iiw_files, "docci": _docci_sources, "sharegpt4v-1k": _share4v_files,
         "sharegpt4v-10k": lambda server: _share4v_files(server, 10_000), "urban1k": _urban_files,
         "mscoco-5k": _coco_files, "flickr30k-1k": _flickr_files, "flickr30k-full": _flickr_full_files}
LONG_COUNTS = {"dci": 5, "iiw": 5, "docci": 3, "sharegpt4v-1k": 1000, "urban1k": 12}
SHORT_COUNTS = {"mscoco-5k": 2, "flickr30k-1k": 2, "flickr30k-full": 2}


def _item(text: str) -> int:
    return int(text.split("item ")[1].split()[0].rstrip(".,"))


# --- long and short sets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("source", list(LONG_COUNTS))
def test_long_set_imports_with_image_paths_and_evaluates(source, http_server, tmp_path, tiny_model):
    _fetch(http_server, tmp_path / "data", FILES[source](http_server))
    bench = tmp_path / "benchmarks" / source
    meta = import_benchmark(source, tmp_path / "data", bench, check_count=False)
    assert meta == {"kind": "long", "source": source, "n_images": LONG_COUNTS[source],
                    "n_texts": LONG_COUNTS[source]}
    assert json.loads((bench / "meta.json").read_text()) == meta
    records = read_jsonl(bench / "texts.jsonl")
    assert not (bench / "images").exists()  # images stay where fetch put them
    assert all(not Path(r["image"]).is_absolute() and r["image"].startswith("../../data/") for r in records)
    period = 12 if source.startswith("sharegpt4v") else 48
    for path, record in zip(image_paths(bench, records), records, strict=True):
        assert _image_id(path) == _item(record["text"]) % period  # text and image still paired
    metrics = evaluate_benchmark(*tiny_model, bench, batch_size=64)
    assert metrics["kind"] == "long" and metrics["n_images"] == LONG_COUNTS[source]
    assert 0.0 <= metrics["i2t_r1"] <= 100.0 and 0.0 <= metrics["t2i_r1"] <= 100.0


@pytest.mark.parametrize("source", list(SHORT_COUNTS))
def test_short_set_imports_raw_captions_and_evaluates(source, http_server, tmp_path, tiny_model):
    _fetch(http_server, tmp_path / "data", FILES[source](http_server))
    bench = tmp_path / "bench"
    meta = import_benchmark(source, tmp_path / "data", bench, check_count=False)
    assert meta == {"kind": "short", "source": source, "n_images": 2, "n_texts": 10}
    records = read_jsonl(bench / "texts.jsonl")
    assert records[0]["texts"][0] == f"A short caption 0 of item {1 if source == 'mscoco-5k' else 5}."
    for path, record in zip(image_paths(bench, records), records, strict=True):
        assert all(f"of item {_image_id(path)}." in t for t in record["texts"])
    metrics = evaluate_benchmark(*tiny_model, bench)
    assert metrics["kind"] == "short" and (metrics["n_images"], metrics["n_texts"]) == (2, 10)
    assert metrics["t2i_r5"] == 100.0  # two images: every caption finds its image among the top 5


def test_sharegpt4v_10k_takes_the_first_10000_entries(http_server, tmp_path):
    _fetch(http_server, tmp_path, FILES["sharegpt4v-10k"](http_server))
    meta = import_benchmark("sharegpt4v-10k", tmp_path, tmp_path / "bench")  # protocol size: count checked
    records = read_jsonl(tmp_path / "bench" / "texts.jsonl")
    assert meta["n_images"] == len(records) == 10_000
    assert records[-1]["image"].endswith("sa_000000/sa_3.jpg") and _item(records[-1]["text"]) == 9999


def test_imagenet_val_folder_imports_classes_and_templates(tmp_path, tiny_model, monkeypatch):
    val = tmp_path / "val"
    for k in range(1000):
        (val / f"n{k:08d}").mkdir(parents=True)
    for k in (0, 1, 999):
        (val / f"n{k:08d}" / f"ILSVRC2012_val_{k:08d}.JPEG").write_bytes(_jpg(k % 48))
    meta = import_benchmark("imagenet", tmp_path / "unused", tmp_path / "bench", path=val, check_count=False)
    assert (meta["kind"], meta["n_images"], meta["n_classes"], len(meta["templates"])) == ("zeroshot", 3, 1000, 80)
    assert meta["templates"][0] == "a bad photo of a {}." and meta["classes"][0] == "tench"
    assert [r["label"] for r in read_jsonl(tmp_path / "bench" / "texts.jsonl")] == [0, 1, 999]
    # evaluate with 2 of the 80 templates (all 80 x 1000 prompts take minutes on a CPU)
    module = benchmarks._zero_shot_metadata()
    monkeypatch.setattr(module, "OPENAI_IMAGENET_TEMPLATES", module.OPENAI_IMAGENET_TEMPLATES[:2])
    import_benchmark("imagenet", tmp_path / "unused", tmp_path / "bench2", path=val, check_count=False)
    metrics = evaluate_benchmark(*tiny_model, tmp_path / "bench2", batch_size=500)
    assert metrics["kind"] == "zeroshot" and (metrics["n_images"], metrics["n_classes"]) == (3, 1000)
    with pytest.raises(ValueError, match="imagenet: 3 images, the protocol has 50000"):
        import_benchmark("imagenet", tmp_path, tmp_path / "bench3", path=val)


def test_imported_folder_survives_moving_the_project(http_server, tmp_path, tiny_model):
    project = tmp_path / "project"
    _fetch(http_server, project / "resources" / "data", _urban_files(http_server))
    import_benchmark("urban1k", project / "resources" / "data", project / "resources" / "benchmarks" / "u",
                     check_count=False)
    moved = tmp_path / "elsewhere"
    shutil.move(project, moved)
    metrics = evaluate_benchmark(*tiny_model, moved / "resources" / "benchmarks" / "u")
    assert metrics["n_images"] == 12


# --- errors ----------------------------------------------------------------------------------------------

def test_import_errors_name_the_file_and_what_to_fetch(http_server, tmp_path):
    files = [f for f in _dci_sources(http_server) if "photos" not in f["extract_to"]]  # no SA-1B images
    _fetch(http_server, tmp_path, files)
    with pytest.raises(FileNotFoundError, match=r"sa_1.json: image .*sa_1.jpg not found \(source dci needs: dci; "
                                                r"see config/datasets.yaml, including its manual steps\)"):
        import_benchmark("dci", tmp_path, tmp_path / "bench")
    assert not (tmp_path / "bench").exists()  # nothing half-written
    _fetch(http_server, tmp_path, _dci_sources(http_server))
    with pytest.raises(ValueError, match="dci: 5 images, the protocol has 7805"):
        import_benchmark("dci", tmp_path, tmp_path / "bench")
    with pytest.raises(ValueError, match="source dci: takes no path"):
        import_benchmark("dci", tmp_path, tmp_path / "bench", path=tmp_path)
    with pytest.raises(ValueError, match="source imagenet: needs a path"):
        import_benchmark("imagenet", tmp_path, tmp_path / "bench")
    with pytest.raises(ValueError, match="source 'coco': unknown"):
        import_benchmark("coco", tmp_path, tmp_path / "bench")


def test_runner_names_a_missing_record_image(tmp_path, tiny_model):
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "long"}))
    (tmp_path / "texts.jsonl").write_text(json.dumps({"key": "a", "image": "../gone.jpg", "text": "t"}) + "\n")
    with pytest.raises(FileNotFoundError, match=r"texts.jsonl: record 1: image .*gone.jpg not found"):
        evaluate_benchmark(*tiny_model, tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "zeroshot", "classes": ["a"]}))
    with pytest.raises(ValueError, match="meta.json: field 'templates' missing or empty"):
        evaluate_benchmark(*tiny_model, tmp_path)


def test_every_source_has_a_fixture_or_a_path():
    assert set(FILES) | {"imagenet"} == set(SOURCES)


# --- CLI: fetch + import, as the workflow calls them -----------------------------------------------------

def _run_cli(*argv: str) -> None:
    args = build_parser().parse_args(list(argv))
    args.func(args)


def test_cli_fetch_writes_a_marker_then_import_benchmark(http_server, tmp_path):
    catalog = tmp_path / "catalog.yaml"
    entry = {"files": _urban_files(http_server), "manual": ["nothing to do by hand"]}
    catalog.write_text(json.dumps({"datasets": {"urban1k": entry}}))  # JSON is YAML
    root, marker = tmp_path / "resources" / "data", tmp_path / "resources" / "data" / ".fetched" / "urban1k.json"
    _run_cli("fetch", "--dataset", "urban1k", "--root", str(root), "--catalog", str(catalog), "--out", str(marker))
    done = json.loads(marker.read_text())
    assert done["dataset"] == "urban1k" and done["manual_steps"] == ["nothing to do by hand"]
    assert Path(done["paths"][0]) == root / "urban1k"
    with pytest.raises(ValueError, match="catalog.yaml: no dataset 'dci'"):
        _run_cli("fetch", "--dataset", "dci", "--root", str(root), "--catalog", str(catalog), "--out", str(marker))
    out = tmp_path / "resources" / "benchmarks" / "urban"
    _run_cli("import-benchmark", "--source", "urban1k", "--data-root", str(root), "--no-check-count",
             "--out", str(out))
    assert json.loads((out / "meta.json").read_text())["n_images"] == 12
