"""Loaders for the real evaluation sets in their published layouts (the released LoTLIP protocol).

Long-text sets return ``[(image_path, text), ...]`` with every text passed through ``clean_caption``; the short
sets (MSCOCO, Flickr30k) return ``[(image_path, [caption, ...]), ...]`` with raw captions; ImageNet returns a
``ZeroShotSet``. ``check_images=False`` skips the image-existence check (index-only use, count tests). Errors
name the file and the field. ``check_count`` enforces the protocol sizes of FACTS.md on a full download.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lotlip.data.subcaptions import clean_caption
from lotlip.io import read_jsonl

Pair = tuple[Path, str]
MultiPair = tuple[Path, list[str]]

EXPECTED = {"dci": 7805, "iiw": 612, "sharegpt4v-1k": 1000, "sharegpt4v-10k": 10000, "urban1k": 1000,
            "docci": 5000, "mscoco-5k": 5000, "flickr30k-1k": 1000, "flickr30k-full": 31783, "imagenet": 50000}
EXPECTED_TEXTS = {"mscoco-5k": 25000, "flickr30k-1k": 5000, "flickr30k-full": 158915}
IIW_SETS = {"DOCCI_Test": "docci", "IIW-400": "docci_aar", "DCI_Test": "dci"}  # released order and image folders
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
SYNSET = re.compile(r"n\d{8}")


class FormatError(ValueError):
    """An index file that does not have the published layout."""


def check_count(name: str, items: list, n_texts: int | None = None) -> None:
    """Raise unless ``items`` (and ``n_texts``, for short sets) have the protocol size of set ``name``."""
    if len(items) != EXPECTED[name]:
        raise ValueError(f"{name}: {len(items)} images, the protocol has {EXPECTED[name]}")
    if name in EXPECTED_TEXTS and n_texts is not None and n_texts != EXPECTED_TEXTS[name]:
        raise ValueError(f"{name}: {n_texts} texts, the protocol has {EXPECTED_TEXTS[name]}")


# --- helpers ---------------------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _text(record: Any, key: str, where: str) -> str:
    """``record[key]`` as a string, or a FormatError naming ``where`` and the field."""
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, str):
        raise FormatError(f"{where}: field {key!r} missing" if value is None else f"{where}: field {key!r} not text")
    return value


def locate_marker(root: Path, marker: str, depth: int = 2) -> Path:
    """The folder holding ``marker``: ``root`` or one folder at most ``depth`` levels below (must be unique)."""
    level = [root]
    for _ in range(depth + 1):
        hits = [d for d in level if (d / marker).exists()]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise FormatError(f"{root}: several folders hold {marker}: {', '.join(map(str, hits))}")
        level = sorted(c for d in level if d.is_dir() for c in d.iterdir() if c.is_dir())
    raise FileNotFoundError(f"{root}: no {marker} in it or {depth} levels below")


def _child(parent: Path, name: str) -> Path:
    """``parent / name``, matching the name case-insensitively when the exact case is absent."""
    exact = parent / name
    if exact.exists() or not parent.is_dir():
        return exact
    matches = [c for c in parent.iterdir() if c.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else exact


class _ImageFinder:
    """Resolves ``root / rel``; falls back to a file of the same name anywhere under ``root`` (built once)."""

    def __init__(self, root: Path, check: bool):
        self.root, self.check, self._index = root, check, None

    def __call__(self, rel: str, where: str, alternatives: tuple[str, ...] = ()) -> Path:
        path = self.root / rel
        if not self.check or path.is_file():
            return path
        for alt in alternatives:
            if (self.root / alt).is_file():
                return self.root / alt
        if self._index is None:
            self._index = {f: Path(d) / f for d, _, files in os.walk(self.root) for f in files}
        found = self._index.get(Path(rel).name)
        if found is None:
            raise FileNotFoundError(f"{where}: image {path} not found")
        return found


# --- long-text sets --------------------------------------------------------------------------------------

def load_dci(root: str | Path, check_images: bool = True) -> list[Pair]:
    """DCI, all splits (7,805): text ``short_caption + "\\n" + extra_caption``, cleaned.

    Layout (Meta's ``dci.tar.gz`` + SA-1B ``sa_000138.tar`` images), found at ``root`` or up to two levels below::

        densely_captioned_images/splits.json        {"train": [ann.json, ...], "valid": [...], "test": [...]}
        densely_captioned_images/annotations/<ann>.json   fields image, short_caption, extra_caption
        densely_captioned_images/photos/<image>           SA-1B jpg named by the field image
    """
    base = locate_marker(Path(root), "splits.json")
    splits = _read_json(base / "splits.json")
    if not isinstance(splits, dict):
        raise FormatError(f"{base / 'splits.json'}: expected a mapping split -> list of annotation files")
    images = _ImageFinder(base / "photos", check_images)
    pairs = []
    for split, names in splits.items():
        if not isinstance(names, list):
            raise FormatError(f"{base / 'splits.json'}: field {split!r} is not a list")
        for name in names:
            path = base / "annotations" / name
            ann = _read_json(path)
            text = f"{_text(ann, 'short_caption', str(path))}\n{_text(ann, 'extra_caption', str(path))}"
            pairs.append((images(_text(ann, "image", str(path)), str(path)), clean_caption(text)))
    return pairs


def iiw_image_dirs(dci_root: str | Path, docci_root: str | Path) -> dict[str, Path]:
    """IIW image folders in the original DCI / DOCCI layouts (instead of the copied ``dci/docci/docci_aar``)."""
    dci = locate_marker(Path(dci_root), "splits.json") / "photos"
    docci, aar = (locate_marker(Path(docci_root), name) / name for name in ("images", "images_aar"))
    return {"DOCCI_Test": docci, "IIW-400": aar, "DCI_Test": dci}


def _iiw_image_name(record: dict, where: str) -> str:
    name = record.get("image", record.get("image/key"))
    if not isinstance(name, str):
        raise FormatError(f"{where}: field 'image' (or 'image/key') missing")
    return name if ".jpg" in name else name + ".jpg"


def load_iiw(root: str | Path, anno_root: str | Path | None = None, image_dirs: dict[str, Path] | None = None,
             check_images: bool = True) -> list[Pair]:
    """IIW human-annotated sets (612 = 100 DOCCI_Test + 400 IIW-400 + 112 DCI_Test), text field ``IIW``, cleaned.

    Layout (google/imageinwords ``datasets/`` + the released preprocessing): ``<anno_root>/<set>/data.jsonl`` for
    set in DOCCI_Test, IIW-400, DCI_Test (folder case ignored: the repo also spells them DCI_TEST, DOCCI_TEST);
    images ``<root>/{docci,docci_aar,dci}/<name>`` where name is field ``image`` or ``image/key``, ``.jpg`` added
    if absent; a missing ``test_*`` name falls back to ``train_*`` (as the released copy script does).
    ``anno_root`` defaults to ``root``; ``image_dirs`` overrides the image folders (see ``iiw_image_dirs``).
    """
    root = Path(root)
    anno_root = root if anno_root is None else Path(anno_root)
    dirs = image_dirs or {name: root / sub for name, sub in IIW_SETS.items()}
    pairs = []
    for set_name in IIW_SETS:
        path = _child(anno_root, set_name) / "data.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: IIW annotation file not found")
        images = _ImageFinder(Path(dirs[set_name]), check_images)
        for i, record in enumerate(read_jsonl(path), 1):
            where = f"{path}: record {i}"
            name = _iiw_image_name(record, where)
            image = images(name, where, (name.replace("test", "train"),))
            pairs.append((image, clean_caption(_text(record, "IIW", where))))
    return pairs


def load_sharegpt4v(annotation: str | Path, image_root: str | Path, n: int = 10000,
                    check_images: bool = True) -> list[Pair]:
    """ShareGPT4V-1k / -10k: the first ``n`` entries of ``share4v_sam_10k.json``, text ``conversations[1].value``.

    Layout: the annotation is a JSON list of ``{"image": <path relative to image_root>, "conversations":
    [{"from": "human", ...}, {"from": "gpt", "value": <caption>}]}``; ``image_root`` holds the extracted SA-1B
    tars. An image missing at ``image_root / image`` is looked up by file name anywhere under ``image_root``.
    """
    annotation = Path(annotation)
    entries = _read_json(annotation)
    if not isinstance(entries, list):
        raise FormatError(f"{annotation}: expected a JSON list of entries")
    if len(entries) < n:
        raise FormatError(f"{annotation}: {len(entries)} entries, the protocol takes the first {n}")
    images = _ImageFinder(Path(image_root), check_images)
    pairs = []
    for i, entry in enumerate(entries[:n]):
        where = f"{annotation}: entry {i}"
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list) or len(turns) < 2 or not isinstance(turns[1], dict):
            raise FormatError(f"{where}: field 'conversations[1].value' missing")
        text = _text(turns[1], "value", f"{where}: conversations[1]")
        pairs.append((images(_text(entry, "image", where), where), clean_caption(text)))
    return pairs


def _stem_key(path: Path) -> tuple:
    return (0, int(path.stem), "") if path.stem.isdigit() else (1, 0, path.stem)


def load_urban1k(root: str | Path, check_images: bool = True) -> list[Pair]:
    """Urban1k (1,000): ``caption/<stem>.txt`` (first line, cleaned) with ``image/<stem>.jpg``, numeric stem order.

    Layout (``Urban1k.zip`` from HF BeichenZhang/Urban1k), at ``root`` or up to two levels below::

        Urban1k/image/1.jpg ...    Urban1k/caption/1.txt ...
    """
    base = locate_marker(Path(root), "caption")
    captions = sorted((p for p in (base / "caption").iterdir() if p.suffix == ".txt"), key=_stem_key)
    pairs = []
    for path in captions:
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or not lines[0].strip():
            raise FormatError(f"{path}: first line (the caption) is empty")
        image = base / "image" / f"{path.stem}.jpg"
        if check_images and not image.is_file():
            raise FileNotFoundError(f"{path}: image {image} not found")
        pairs.append((image, clean_caption(lines[0])))
    if check_images:
        extra = {p.stem for p in (base / "image").iterdir()} - {p.stem for p in captions}
        if extra:
            raise FormatError(f"{base / 'image'}: images without a caption file: {', '.join(sorted(extra)[:5])}")
    return pairs


def load_docci(root: str | Path, split: str = "test", check_images: bool = True) -> list[Pair]:
    """DOCCI ``test`` (5,000): field ``description`` (cleaned) with ``images/<image_file>``.

    Layout (google.github.io/docci): ``docci_descriptions.jsonlines`` (fields example_id, split, image_file,
    description) and the folder ``images/`` of ``docci_images.tar.gz``, each at ``root`` or up to two levels below.
    """
    base = locate_marker(Path(root), "docci_descriptions.jsonlines")
    path = base / "docci_descriptions.jsonlines"
    images = _ImageFinder(locate_marker(Path(root), "images") / "images", check_images)
    pairs = []
    for i, record in enumerate(read_jsonl(path), 1):
        where = f"{path}: record {i}"
        if _text(record, "split", where) != split:
            continue
        pairs.append((images(_text(record, "image_file", where), where),
                      clean_caption(_text(record, "description", where))))
    return pairs


# --- short-text sets -------------------------------------------------------------------------------------

def load_karpathy(annotation: str | Path, image_root: str | Path, split: str = "test", captions_per_image: int = 5,
                  check_images: bool = True) -> list[MultiPair]:
    """Images of one Karpathy split with their first ``captions_per_image`` raw captions (stripped, not cleaned).

    Layout (``caption_datasets.zip``: dataset_coco.json / dataset_flickr30k.json): ``{"images": [{"filename",
    "filepath" (COCO only, e.g. val2014), "split", "sentences": [{"raw", "tokens"}, ...]}, ...]}``; the image is
    ``image_root / filepath / filename``. A few COCO images have 6-7 captions: the protocol's 25,000 texts use 5.
    """
    annotation = Path(annotation)
    data = _read_json(annotation)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{annotation}: field 'images' missing")
    out = []
    for i, item in enumerate(data["images"]):
        where = f"{annotation}: images[{i}]"
        if _text(item, "split", where) != split:
            continue
        sentences = item.get("sentences")
        if not isinstance(sentences, list) or len(sentences) < captions_per_image:
            raise FormatError(f"{where}: field 'sentences' has fewer than {captions_per_image} captions")
        texts = [_text(s, "raw", f"{where}.sentences[{j}]").strip() for j, s in enumerate(sentences)]
        image = Path(image_root) / item.get("filepath", "") / _text(item, "filename", where)
        if check_images and not image.is_file():
            raise FileNotFoundError(f"{where}: image {image} not found")
        out.append((image, texts[:captions_per_image]))
    return out


def load_mscoco_5k(annotation: str | Path, image_root: str | Path, check_images: bool = True) -> list[MultiPair]:
    """MSCOCO 5k test (Karpathy ``dataset_coco.json``; ``image_root`` holds ``val2014/``)."""
    return load_karpathy(annotation, image_root, "test", 5, check_images)


def load_flickr30k_1k(annotation: str | Path, image_root: str | Path, check_images: bool = True) -> list[MultiPair]:
    """Flickr30k 1k test (Karpathy ``dataset_flickr30k.json``; ``image_root`` holds the jpgs)."""
    return load_karpathy(annotation, image_root, "test", 5, check_images)


def load_flickr30k_full(token_file: str | Path, image_root: str | Path, captions_per_image: int = 5,
                        check_images: bool = True) -> list[MultiPair]:
    """Flickr30k, every image of the token file (31,783 x 5 captions; Long-CLIP's Flickr protocol).

    Layout (``flickr30k.tar.gz`` of the official release): ``results_20130124.token``, one line per caption,
    ``<filename>#<k><TAB><caption>``; images ``image_root / <filename>``. Images keep their first appearance order;
    captions are stripped, not cleaned; each image needs ``captions_per_image`` of them (the first are kept).
    """
    token_file = Path(token_file)
    if not token_file.is_file():
        raise FileNotFoundError(f"{token_file}: Flickr30k token file not found")
    captions: dict[str, list[str]] = {}
    for n, line in enumerate(token_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, tab, text = line.partition("\t")
        name, hash_, _ = key.partition("#")
        if not tab or not hash_ or not name:
            raise FormatError(f"{token_file}: line {n}: expected '<image>#<k><TAB><caption>'")
        captions.setdefault(name, []).append(text.strip())
    out = []
    for name, texts in captions.items():
        if len(texts) < captions_per_image:
            raise FormatError(f"{token_file}: image {name} has {len(texts)} captions, expected {captions_per_image}")
        image = Path(image_root) / name
        if check_images and not image.is_file():
            raise FileNotFoundError(f"{token_file}: image {image} not found")
        out.append((image, texts[:captions_per_image]))
    return out


# --- zero-shot ImageNet ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZeroShotSet:
    """Labelled images, class names (index = label) and prompt templates."""

    samples: list[tuple[Path, int]]
    classnames: list[str]
    templates: list[Callable[[str], str]]

    def prompts(self) -> list[list[str]]:
        """Per class, the class name written into every template."""
        return [[t(c) for t in self.templates] for c in self.classnames]


@functools.cache
def _zero_shot_metadata() -> ModuleType:
    """``open_clip.zero_shot_metadata`` (class names, templates), without importing open_clip and torch if unloaded."""
    if "open_clip.zero_shot_metadata" in sys.modules:
        return sys.modules["open_clip.zero_shot_metadata"]
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("open_clip is needed for the ImageNet class names and templates")
    path = Path(spec.submodule_search_locations[0]) / "zero_shot_metadata.py"
    module_spec = importlib.util.spec_from_file_location("_lotlip_open_clip_zero_shot_metadata", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_imagenet_val(root: str | Path) -> ZeroShotSet:
    """ImageNet-1k val, folder per synset (``<root>/n01440764/*.JPEG``, 1,000 folders, user-supplied).

    Labels follow the sorted synset order, which is the order of open_clip's ``IMAGENET_CLASSNAMES``; the 80
    ``OPENAI_IMAGENET_TEMPLATES`` are the prompts. The flat official val tar must be sorted into folders first.
    """
    meta = _zero_shot_metadata()
    classnames, templates = list(meta.IMAGENET_CLASSNAMES), list(meta.OPENAI_IMAGENET_TEMPLATES)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: ImageNet val folder not found")
    synsets = sorted(d.name for d in root.iterdir() if d.is_dir() and SYNSET.fullmatch(d.name))
    if len(synsets) != len(classnames):
        raise FormatError(f"{root}: {len(synsets)} synset folders (nXXXXXXXX), expected {len(classnames)}")
    samples = [(p, label) for label, wnid in enumerate(synsets)
               for p in sorted((root / wnid).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    return ZeroShotSet(samples, classnames, templates)
