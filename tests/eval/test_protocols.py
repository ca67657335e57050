"""Named protocols: the registry's counts match the published sizes; every protocol indexes a tiny set in its real
layout; Long-CLIP's whole-Flickr30k token file loads; unknown names are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lotlip.catalog import SOURCES
from lotlip.data.benchmarks import EXPECTED, EXPECTED_TEXTS, FormatError, check_count, load_flickr30k_full
from lotlip.eval.protocols import CLEANING, PROTOCOLS, describe, resolve
from tests.protocol_fixtures import FIXTURE_IMAGES, build_data_root

TABLE_1 = {"dci": (7805, 7805), "iiw": (612, 612), "sharegpt4v-1k": (1000, 1000),  # FACTS.md Table 1
           "sharegpt4v-10k": (10000, 10000), "coco-5k": (5000, 25000), "flickr-1k": (1000, 5000)}
PUBLISHED = {"urban1k": (1000, 1000), "docci": (5000, 5000), "flickr-full": (31783, 158915),  # the sets' own sizes
             "imagenet": (50000, 1000)}
TASK_KIND = {"long_retrieval": "long", "short_retrieval": "short", "zeroshot_classification": "zeroshot"}


def test_registry_names_counts_and_rules():
    assert list(PROTOCOLS) == ["dci", "iiw", "sharegpt4v-1k", "sharegpt4v-10k", "urban1k", "docci", "coco-5k",
                               "flickr-1k", "flickr-full", "imagenet"]
    for name, p in PROTOCOLS.items():
        assert (p.n_images, p.n_texts) == {**TABLE_1, **PUBLISHED}[name], name
        assert p.source in SOURCES and SOURCES[p.source].kind == TASK_KIND[p.task], name
        assert EXPECTED[p.source] == p.n_images, name  # what check_count enforces on a full download
        if p.task == "short_retrieval":
            assert EXPECTED_TEXTS[p.source] == p.n_texts, name
        assert p.cleaning in CLEANING and p.truncation and p.defined_by and p.data, name
    text = describe()
    assert all(f"  {name}: " in text for name in PROTOCOLS) and "Truncation" in text


def test_resolve_keeps_order_and_refuses_unknown_names():
    assert [p.name for p in resolve("iiw, dci,iiw")] == ["iiw", "dci"]
    with pytest.raises(ValueError, match=r"--protocol: unknown protocol 'long-dci' \(known: dci, iiw"):
        resolve("dci,long-dci")
    with pytest.raises(ValueError, match="no protocol named"):
        resolve(" , ")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return build_data_root(tmp_path_factory.mktemp("protocol_data"))


def test_every_protocol_indexes_its_tiny_set(data_root, tmp_path):
    from lotlip.eval.harness import import_protocols

    folders = import_protocols(list(PROTOCOLS.values()), data_root, tmp_path, None, check_count=False)
    for name, folder in folders.items():
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["kind"] == TASK_KIND[PROTOCOLS[name].task] and meta["n_images"] == FIXTURE_IMAGES[name], name
        records = [json.loads(line) for line in (folder / "texts.jsonl").read_text().splitlines()]
        assert all((folder / r["image"]).is_file() for r in records), name
    dci = [json.loads(line) for line in (folders["dci"] / "texts.jsonl").read_text().splitlines()]
    assert dci[0]["text"] == "A photo of item 1. Detail 1. More"  # short + "\n" + extra, cleaned
    full = json.loads((folders["flickr-full"] / "texts.jsonl").read_text().splitlines()[-1])
    assert full["texts"][0] == "A person with item 5 , take 0 ." and len(full["texts"]) == 5
    with pytest.raises(ValueError, match="dci: 4 images, the protocol has 7805"):
        import_protocols([PROTOCOLS["dci"]], data_root, tmp_path / "checked", None)


def test_missing_annotation_file_is_named(data_root, tmp_path):
    from lotlip.eval.harness import import_protocols

    with pytest.raises(FileNotFoundError, match=r"results_20130124.token.*source flickr30k-full needs: flickr30k"):
        import_protocols([PROTOCOLS["flickr-full"]], tmp_path, tmp_path / "b", None, check_count=False)


def test_flickr_full_token_file(tmp_path):
    token = tmp_path / "results_20130124.token"
    token.write_text("".join(f"{n}.jpg#{k}\tcap {n} {k} \n" for n in (7, 3) for k in range(6)))
    out = load_flickr30k_full(token, tmp_path, check_images=False)
    assert [(p.name, t[0], len(t)) for p, t in out] == [("7.jpg", "cap 7 0", 5), ("3.jpg", "cap 3 0", 5)]
    with pytest.raises(FileNotFoundError, match=r"image .*7.jpg not found"):
        load_flickr30k_full(token, tmp_path)
    token.write_text("7.jpg#0\tonly one\n")
    with pytest.raises(FormatError, match="image 7.jpg has 1 captions, expected 5"):
        load_flickr30k_full(token, tmp_path, check_images=False)
    token.write_text("7.jpg no tab\n")
    with pytest.raises(FormatError, match="line 1: expected"):
        load_flickr30k_full(token, tmp_path, check_images=False)


def test_flickr_full_size_index_gives_31783_and_158915(tmp_path):
    token = tmp_path / "results_20130124.token"
    token.write_text("".join(f"{n}.jpg#{k}\tx\n" for n in range(31783) for k in range(5)))
    out = load_flickr30k_full(token, tmp_path, check_images=False)
    check_count("flickr30k-full", out, sum(len(t) for _, t in out))
