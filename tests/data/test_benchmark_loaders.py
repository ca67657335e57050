"""Each real evaluation set: a tiny fixture in its published layout is served, fetched, extracted and loaded;
the protocol counts are checked on synthetic full-size index files (``check_images=False``)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from lotlip.data.benchmarks import (
    FormatError,
    check_count,
    iiw_image_dirs,
    load_dci,
    load_docci,
    load_flickr30k_1k,
    load_iiw,
    load_imagenet_val,
    load_mscoco_5k,
    load_sharegpt4v,
    load_urban1k,
)
from lotlip.data.download import fetch
from lotlip.data.subcaptions import clean_caption

pytest_plugins = ["tests.http_fixture"]


# --- fixture builders ------------------------------------------------------------------------------------

def _colour(i: int) -> tuple[int, int, int]:
    return (40 * (i % 6) + 20, 60 * (i // 6 % 4) + 20, 200 - 30 * (i % 5))


def _jpg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), _colour(i)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _image_id(path: Path) -> int:
    """Which ``_jpg(i)`` a file is (nearest colour)."""
    pixel = Image.open(path).convert("RGB").getpixel((4, 4))
    return min(range(48), key=lambda i: sum((a - b) ** 2 for a, b in zip(pixel, _colour(i), strict=True)))


def _tar(members: dict[str, bytes], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _spec(server, name: str, data: bytes, **where) -> dict:
    """Serve ``data`` and return its catalog entry (with its real checksum)."""
    return {"url": server.add(name, data), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **where}


def _fetch(server, root: Path, files: list[dict]) -> None:
    fetch("fixture", root, {"fixture": {"files": files}}, backoff=0)


def _assert_aligned(pairs: list[tuple[Path, str]]) -> None:
    """Every text names ``item <i>`` and its image is ``_jpg(i)``."""
    for path, text in pairs:
        i = int(text.split("item ")[1].split()[0].rstrip(".,"))
        assert _image_id(path) == i, (path, text)


# --- DCI -------------------------------------------------------------------------------------------------

DCI_SPLITS = {"train": [1, 2, 3], "valid": [4], "test": [5]}


def _dci_sources(server) -> list[dict]:
    base = "densely_captioned_images"
    members = {f"{base}/splits.json": json.dumps({k: [f"sa_{i}.json" for i in v] for k, v in DCI_SPLITS.items()})
               .encode()}
    for i in range(1, 6):
        ann = {"image": f"sa_{i}.jpg", "image_id": i, "short_caption": f"A photo of item {i}.",
               "extra_caption": f"It is red.\nThere is a cat</s>  near item {i}", "mask_data": {}}
        members[f"{base}/annotations/sa_{i}.json"] = json.dumps(ann).encode()
    photos = {f"sa_{i}.jpg": _jpg(i) for i in range(1, 6)} | {"sa_1.json": b"{}"}  # SA-1B tar: jpg + mask json
    return [_spec(server, "dci.tar.gz", _tar(members), extract_to="dci"),
            _spec(server, "sa_000138.tar", _tar(photos, gz=False), extract_to=f"dci/{base}/photos")]


def test_dci_fetch_extract_load(http_server, tmp_path):
    _fetch(http_server, tmp_path, _dci_sources(http_server))
    pairs = load_dci(tmp_path / "dci")
    assert len(pairs) == 5
    assert [p.name for p, _ in pairs] == [f"sa_{i}.jpg" for i in (1, 2, 3, 4, 5)]  # splits in file order
    assert pairs[0][1] == "A photo of item 1. It is red. There is a cat. near item 1"
    _assert_aligned(pairs)


def test_dci_errors_name_file_and_field(tmp_path):
    base = tmp_path / "dci" / "densely_captioned_images"
    (base / "annotations").mkdir(parents=True)
    (base / "splits.json").write_text(json.dumps({"test": ["sa_123.json"]}))
    (base / "annotations" / "sa_123.json").write_text(json.dumps({"image": "sa_123.jpg", "short_caption": "x"}))
    with pytest.raises(FormatError, match=r"dci/densely_captioned_images/annotations/sa_123.json: field "
                                          r"'extra_caption' missing"):
        load_dci(tmp_path / "dci", check_images=False)
    (base / "annotations" / "sa_123.json").write_text(json.dumps({"image": "sa_123.jpg", "short_caption": "x",
                                                                  "extra_caption": "y"}))
    with pytest.raises(FileNotFoundError, match="sa_123.json: image .*photos/sa_123.jpg not found"):
        load_dci(tmp_path / "dci")


# --- DOCCI and IIW ---------------------------------------------------------------------------------------

def _docci_sources(server) -> list[dict]:
    records = [{"example_id": f"{split}_{i:05d}", "split": split, "image_file": f"{split}_{i:05d}.jpg",
                "description": f"A view of item {i}. Sunny\nday"}
               for split, i in [("train", 7), ("test", 8), ("qual_dev", 9), ("test", 10), ("test", 11)]]
    images = {f"images/{r['image_file']}": _jpg(int(r["example_id"][-2:])) for r in records}
    images["images/train_00012.jpg"] = _jpg(12)  # IIW's DOCCI_Test names a test_ image kept as train_
    aar = {f"images_aar/aar_test_{i:05d}.jpg": _jpg(i) for i in (13, 14)}
    return [_spec(server, "docci_descriptions.jsonlines", _jsonl(records), dest="docci/docci_descriptions.jsonlines"),
            _spec(server, "docci_images.tar.gz", _tar(images), extract_to="docci/archive_images"),
            _spec(server, "docci_images_aar.tar.gz", _tar(aar), extract_to="docci/archive_images_aar")]


def test_docci_test_split_fetch_extract_load(http_server, tmp_path):
    _fetch(http_server, tmp_path, _docci_sources(http_server))
    pairs = load_docci(tmp_path / "docci")
    assert [p.name for p, _ in pairs] == ["test_00008.jpg", "test_00010.jpg", "test_00011.jpg"]
    assert pairs[0][1] == "A view of item 8. Sunny. day"
    _assert_aligned(pairs)


def test_iiw_fetch_and_load_from_the_original_dci_and_docci_layouts(http_server, tmp_path):
    iiw = {"IIW-400": [{"image/key": f"aar_test_{i:05d}", "IIW": f"Painting of item {i}.\n\nMore."} for i in (13, 14)],
           "DCI_TEST": [{"image": "sa_5.jpg", "ex_id": "5-data.json", "IIW": "Balcony with item 5."}],
           "DOCCI_Test": [{"image": "test_00008", "DOCCI": "other", "IIW": "A view: item 8</s>wide"},
                          {"image": "test_00012", "IIW": "Kept as train item 12."}]}
    files = [_spec(http_server, f"{k}/data.jsonl", _jsonl(v), dest=f"iiw/{k}/data.jsonl") for k, v in iiw.items()]
    files[1]["urls"] = [http_server.url("DCI_Test/data.jsonl"), files[1].pop("url")]  # first spelling 404s
    _fetch(http_server, tmp_path, _dci_sources(http_server) + _docci_sources(http_server) + files)
    pairs = load_iiw(tmp_path / "iiw", image_dirs=iiw_image_dirs(tmp_path / "dci", tmp_path / "docci"))
    assert [p.name for p, _ in pairs] == ["test_00008.jpg", "train_00012.jpg", "aar_test_00013.jpg",
                                          "aar_test_00014.jpg", "sa_5.jpg"]  # DOCCI_Test, IIW-400, DCI_Test
    assert pairs[0][1] == "A view: item 8. wide" and pairs[2][1] == "Painting of item 13. More"
    _assert_aligned(pairs)


def test_iiw_copied_layout_and_field_errors(tmp_path):
    for name, sub in [("IIW-400", "docci_aar"), ("DCI_Test", "dci"), ("DOCCI_Test", "docci")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.jsonl").write_text(json.dumps({"image": "x.jpg", "IIW": f"item {len(sub)}"}) + "\n")
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.jpg").write_bytes(_jpg(len(sub)))
    pairs = load_iiw(tmp_path)
    assert [p.parent.name for p, _ in pairs] == ["docci", "docci_aar", "dci"]
    _assert_aligned(pairs)
    (tmp_path / "DCI_Test" / "data.jsonl").write_text(json.dumps({"image": "x.jpg", "DCI": "no IIW"}) + "\n")
    with pytest.raises(FormatError, match=r"DCI_Test/data.jsonl: record 1: field 'IIW' missing"):
        load_iiw(tmp_path)


# --- ShareGPT4V ------------------------------------------------------------------------------------------

def _share4v_entry(i: int) -> dict:
    return {"id": f"sa_{i}", "image": f"sam/images/sa_{i}.jpg",
            "conversations": [{"from": "human", "value": "<image>\nDescribe this image in detail."},
                              {"from": "gpt", "value": f"The image shows item {i}.\n\nIt is a sunny day."}]}


def test_sharegpt4v_first_n_entries(http_server, tmp_path):
    annotation = json.dumps([_share4v_entry(i) for i in range(12)]).encode()
    sa1b = _tar({f"sa_{i}.jpg": _jpg(i) for i in range(12)}, gz=False)
    _fetch(http_server, tmp_path, [
        _spec(http_server, "share4v_sam_10k.json", annotation, dest="sharegpt4v/share4v_sam_10k.json"),
        _spec(http_server, "sa_000000.tar", sa1b, extract_to="sa1b/sa_000000")])
    ann = tmp_path / "sharegpt4v" / "share4v_sam_10k.json"
    pairs = load_sharegpt4v(ann, tmp_path / "sa1b", n=10)
    assert len(pairs) == 10 and [p.name for p, _ in pairs] == [f"sa_{i}.jpg" for i in range(10)]
    assert pairs[3][1] == "The image shows item 3. It is a sunny day"
    _assert_aligned(pairs)
    assert load_sharegpt4v(ann, tmp_path / "sa1b", n=4) == pairs[:4]
    with pytest.raises(FormatError, match="12 entries, the protocol takes the first 20"):
        load_sharegpt4v(ann, tmp_path / "sa1b", n=20)


def test_sharegpt4v_missing_caption_names_the_entry(tmp_path):
    entry = _share4v_entry(0)
    del entry["conversations"][1]
    (tmp_path / "a.json").write_text(json.dumps([entry]))
    with pytest.raises(FormatError, match=r"a.json: entry 0: field 'conversations\[1\].value' missing"):
        load_sharegpt4v(tmp_path / "a.json", tmp_path, n=1, check_images=False)


# --- Urban1k ---------------------------------------------------------------------------------------------

def test_urban1k_fetch_extract_load(http_server, tmp_path):
    members = {f"Urban1k/image/{i}.jpg": _jpg(i) for i in range(1, 13)}
    members |= {f"Urban1k/caption/{i}.txt": f"A city street with item {i}. Cars.\nSecond line ignored.\n".encode()
                for i in range(1, 13)}
    _fetch(http_server, tmp_path, [_spec(http_server, "Urban1k.zip", _zip(members), extract_to="urban1k")])
    pairs = load_urban1k(tmp_path / "urban1k")
    assert [p.stem for p, _ in pairs] == [str(i) for i in range(1, 13)]  # numeric, not 1, 10, 11, 12, 2
    assert pairs[0][1] == "A city street with item 1. Cars"
    _assert_aligned(pairs)
    (tmp_path / "urban1k" / "Urban1k" / "image" / "13.jpg").write_bytes(_jpg(13))
    with pytest.raises(FormatError, match="images without a caption file: 13"):
        load_urban1k(tmp_path / "urban1k")


# --- MSCOCO and Flickr30k (Karpathy splits) --------------------------------------------------------------

def _karpathy(dataset: str, items: list[tuple[str, int, int]], filepath: str | None) -> dict:
    images = []
    for split, i, n_caps in items:
        name = f"COCO_val2014_{i:012d}.jpg" if filepath else f"{1000 + i}.jpg"
        entry = {"filename": name, "split": split, "imgid": i,
                 "sentences": [{"raw": f" A short caption {k} of item {i}. ", "tokens": []} for k in range(n_caps)]}
        images.append(entry | ({"filepath": filepath, "cocoid": i} if filepath else {}))
    return {"dataset": dataset, "images": images}


def test_mscoco_and_flickr30k_fetch_extract_load(http_server, tmp_path):
    coco = _karpathy("coco", [("test", 1, 5), ("train", 2, 5), ("test", 3, 7), ("restval", 4, 5)], "val2014")
    flickr = _karpathy("flickr30k", [("test", 5, 5), ("val", 6, 5), ("test", 7, 5)], None)
    captions = _zip({"dataset_coco.json": json.dumps(coco).encode(),
                     "dataset_flickr30k.json": json.dumps(flickr).encode()})
    val2014 = _zip({f"val2014/COCO_val2014_{i:012d}.jpg": _jpg(i) for i in range(1, 5)})
    flickr_images = _tar({f"flickr30k-images/{1000 + i}.jpg": _jpg(i) for i in range(5, 8)})
    _fetch(http_server, tmp_path, [_spec(http_server, "caption_datasets.zip", captions, extract_to="karpathy"),
                                   _spec(http_server, "val2014.zip", val2014, extract_to="coco"),
                                   _spec(http_server, "flickr30k-images.tar.gz", flickr_images,
                                         extract_to="flickr30k")])
    coco_set = load_mscoco_5k(tmp_path / "karpathy" / "dataset_coco.json", tmp_path / "coco")
    assert [p.name for p, _ in coco_set] == ["COCO_val2014_000000000001.jpg", "COCO_val2014_000000000003.jpg"]
    assert [len(t) for _, t in coco_set] == [5, 5]  # the 7-caption image keeps its first 5
    assert coco_set[1][1][0] == "A short caption 0 of item 3."
    flickr_set = load_flickr30k_1k(tmp_path / "karpathy" / "dataset_flickr30k.json",
                                   tmp_path / "flickr30k" / "flickr30k-images")
    assert [p.name for p, _ in flickr_set] == ["1005.jpg", "1007.jpg"]
    for path, texts in coco_set + flickr_set:
        assert all(f"of item {_image_id(path)}." in t for t in texts)


def test_karpathy_too_few_captions_is_an_error(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(_karpathy("coco", [("test", 1, 4)], "val2014")))
    with pytest.raises(FormatError, match=r"d.json: images\[0\]: field 'sentences' has fewer than 5"):
        load_mscoco_5k(tmp_path / "d.json", tmp_path, check_images=False)


# --- ImageNet --------------------------------------------------------------------------------------------

def test_imagenet_val_folder_per_synset(http_server, tmp_path):
    members = {f"val/n{k:08d}/ILSVRC2012_val_{k:08d}.JPEG": _jpg(k % 48) for k in (0, 1, 999)}
    members["val/n00000002/readme.txt"] = b"not an image"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for k in range(1000):
            info = tarfile.TarInfo(f"val/n{k:08d}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _fetch(http_server, tmp_path, [_spec(http_server, "imagenet_val.tar", archive.getvalue(), extract_to="imagenet")])
    zs = load_imagenet_val(tmp_path / "imagenet" / "val")
    assert [(p.parent.name, label) for p, label in zs.samples] == [("n00000000", 0), ("n00000001", 1),
                                                                   ("n00000999", 999)]
    assert len(zs.classnames) == 1000 and len(zs.templates) == 80
    prompts = zs.prompts()
    assert len(prompts) == 1000 and all(len(p) == 80 for p in prompts)
    assert prompts[0][0] == "a bad photo of a tench." and prompts[999][-1] == "a tattoo of the toilet paper."
    assert _image_id(zs.samples[2][0]) == 999 % 48
    with pytest.raises(ValueError, match="imagenet: 3 images, the protocol has 50000"):
        check_count("imagenet", zs.samples)
    (tmp_path / "imagenet" / "val" / "n00000999" / "ILSVRC2012_val_00000999.JPEG").unlink()
    (tmp_path / "imagenet" / "val" / "n00000999").rmdir()
    with pytest.raises(FormatError, match="999 synset folders"):
        load_imagenet_val(tmp_path / "imagenet" / "val")


# --- protocol counts on synthetic full-size index files --------------------------------------------------

def test_dci_full_size_index_gives_7805(tmp_path):
    base = tmp_path / "densely_captioned_images"
    (base / "annotations").mkdir(parents=True)
    sizes = {"train": 7599, "valid": 98, "test": 108}
    splits, i = {}, 0
    for split, n in sizes.items():
        splits[split] = [f"{j}.json" for j in range(i, i + n)]
        i += n
    (base / "splits.json").write_text(json.dumps(splits))
    for name in (n for names in splits.values() for n in names):
        (base / "annotations" / name).write_text(f'{{"image": "sa_{name[:-5]}.jpg", "short_caption": "s", '
                                                 f'"extra_caption": "e {name}"}}')
    pairs = load_dci(tmp_path, check_images=False)
    check_count("dci", pairs)
    assert pairs[-1] == (base / "photos" / "sa_7804.jpg", clean_caption("s\ne 7804.json"))
    with pytest.raises(ValueError, match="dci: 7804 images, the protocol has 7805"):
        check_count("dci", pairs[:-1])


def test_iiw_full_size_index_gives_612(tmp_path):
    for name, n in [("IIW-400", 400), ("DCI_Test", 112), ("DOCCI_Test", 100)]:
        (tmp_path / name).mkdir()
        key = "image/key" if name == "IIW-400" else "image"
        (tmp_path / name / "data.jsonl").write_bytes(_jsonl([{key: f"{name}_{k}", "IIW": "t"} for k in range(n)]))
    pairs = load_iiw(tmp_path, check_images=False)
    check_count("iiw", pairs)
    assert pairs[0][0] == tmp_path / "docci" / "DOCCI_Test_0.jpg"


def test_sharegpt4v_full_size_index_gives_1k_and_10k(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps([_share4v_entry(i) for i in range(10_000)]))
    for name, n in [("sharegpt4v-1k", 1000), ("sharegpt4v-10k", 10_000)]:
        pairs = load_sharegpt4v(tmp_path / "s.json", tmp_path, n=n, check_images=False)
        check_count(name, pairs)
        assert pairs[-1][0] == tmp_path / "sam" / "images" / f"sa_{n - 1}.jpg"


def test_urban1k_docci_and_karpathy_full_size_indexes(tmp_path):
    (tmp_path / "urban" / "image").mkdir(parents=True)
    (tmp_path / "urban" / "caption").mkdir()
    for i in range(1, 1001):
        (tmp_path / "urban" / "caption" / f"{i}.txt").write_text(f"caption {i}\n")
    check_count("urban1k", load_urban1k(tmp_path / "urban", check_images=False))

    records = [{"example_id": f"{s}_{i}", "split": s, "image_file": f"{s}_{i}.jpg", "description": "d"}
               for s, n in [("train", 30), ("test", 5000), ("qual_test", 20)] for i in range(n)]
    (tmp_path / "docci" / "images").mkdir(parents=True)
    (tmp_path / "docci" / "docci_descriptions.jsonlines").write_bytes(_jsonl(records))
    check_count("docci", load_docci(tmp_path / "docci", check_images=False))

    coco = _karpathy("coco", [("test", i, 5 + i % 3) for i in range(5000)] + [("val", 9, 5)], "val2014")
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    coco_set = load_mscoco_5k(tmp_path / "coco.json", tmp_path, check_images=False)
    check_count("mscoco-5k", coco_set, sum(len(t) for _, t in coco_set))
    flickr = _karpathy("flickr30k", [("test", i, 5) for i in range(1000)] + [("train", 1, 5)], None)
    (tmp_path / "flickr.json").write_text(json.dumps(flickr))
    flickr_set = load_flickr30k_1k(tmp_path / "flickr.json", tmp_path, check_images=False)
    check_count("flickr30k-1k", flickr_set, sum(len(t) for _, t in flickr_set))
    with pytest.raises(ValueError, match="flickr30k-1k: 4999 texts, the protocol has 5000"):
        check_count("flickr30k-1k", flickr_set, 4999)
