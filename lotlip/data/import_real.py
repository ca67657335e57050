"""Import a fetched real evaluation set as a benchmark folder, without copying its images.

The folder is the one every evaluation reads (:mod:`lotlip.eval.runner`): ``meta.json`` (``kind``, ``source``,
counts; ``classes`` + ``templates`` for zero-shot) and ``texts.jsonl`` whose records carry ``image``, the path of
the original file relative to the benchmark folder (computed on resolved paths, so it holds through symlinked
folders and survives moving the whole project), and ``text`` (long, cleaned), ``texts`` (short, raw) or
``label`` (zero-shot). Sources read the layouts that ``lotlip fetch`` writes under one data root
(``config/datasets.yaml``); ImageNet val is a user-supplied folder.

The sources themselves (kind, catalog datasets, user path) are declared in :mod:`lotlip.catalog`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from lotlip.catalog import PATH_SOURCES, SOURCES
from lotlip.io import atomic_dir


def _flickr_images(folder: Path) -> Path:
    """The Flickr30k jpg folder: ``folder`` or its ``flickr30k-images/`` (the official archive's top folder)."""
    inner = folder / "flickr30k-images"
    return inner if inner.is_dir() else folder


def _token_file(folder: Path) -> Path:
    """Flickr30k's ``results_20130124.token``: in ``folder`` or up to two levels below."""
    from lotlip.data.benchmarks import locate_marker

    return locate_marker(folder, "results_20130124.token") / "results_20130124.token"


def _long_or_short(source: str, root: Path) -> list:
    """``[(image, text or [texts])]`` of a long or short source, by its published layout under ``root``.

    Images are always checked: the loaders resolve fallbacks (IIW's ``test_`` kept as ``train_``, SA-1B files
    found by name) only then.
    """
    from lotlip.data import benchmarks as b

    share4v = root / "sharegpt4v" / "share4v_sam_10k.json"
    karpathy = root / "karpathy"
    loaders: dict[str, Callable[[], list]] = {
        "dci": lambda: b.load_dci(root / "dci"),
        "iiw": lambda: b.load_iiw(root / "iiw", image_dirs=b.iiw_image_dirs(root / "dci", root / "docci")),
        "docci": lambda: b.load_docci(root / "docci"),
        "sharegpt4v-1k": lambda: b.load_sharegpt4v(share4v, root / "sa1b", 1000),
        "sharegpt4v-10k": lambda: b.load_sharegpt4v(share4v, root / "sa1b", 10000),
        "urban1k": lambda: b.load_urban1k(root / "urban1k"),
        "mscoco-5k": lambda: b.load_mscoco_5k(karpathy / "dataset_coco.json", root / "coco"),
        "flickr30k-1k": lambda: b.load_flickr30k_1k(karpathy / "dataset_flickr30k.json",
                                                    _flickr_images(root / "flickr30k")),
        "flickr30k-full": lambda: b.load_flickr30k_full(_token_file(root / "flickr30k"),
                                                        _flickr_images(root / "flickr30k")),
    }
    return loaders[source]()


def _relative(image: Path, out_dir: Path) -> str:
    """``image`` relative to the benchmark folder (both resolved)."""
    return os.path.relpath(image.resolve(), out_dir.resolve())


def _format_templates(templates: list[Callable[[str], str]], where: str) -> list[str]:
    """open_clip's template functions as ``str.format`` strings with one ``{}``."""
    out = [t("{}") for t in templates]
    bad = [t for t in out if t.count("{}") != 1]
    if bad:
        raise ValueError(f"{where}: template {bad[0]!r} does not take exactly one class name")
    return out


def _zero_shot(path: Path, out_dir: Path, check: bool) -> tuple[list[dict], dict]:
    """Records and meta fields of an ImageNet-style val folder."""
    from lotlip.data import benchmarks as b

    zs = b.load_imagenet_val(path)
    if check:
        b.check_count("imagenet", zs.samples)
    records = [{"key": f"{i:06d}", "image": _relative(p, out_dir), "label": label}
               for i, (p, label) in enumerate(zs.samples)]
    meta = {"classes": zs.classnames, "templates": _format_templates(zs.templates, str(path)),
            "n_classes": len(zs.classnames)}
    return records, meta


def _paired(source: str, root: Path, out_dir: Path, check: bool) -> tuple[list[dict], dict]:
    """Records and meta fields of a long or short source."""
    from lotlip.data.benchmarks import check_count

    kind = SOURCES[source].kind
    pairs = _long_or_short(source, root)
    field = "text" if kind == "long" else "texts"
    records = [{"key": f"{i:06d}", "image": _relative(image, out_dir), field: text}
               for i, (image, text) in enumerate(pairs)]
    n_texts = len(pairs) if kind == "long" else sum(len(t) for _, t in pairs)
    if check:
        check_count(source, pairs, n_texts)
    return records, {"n_texts": n_texts}


def _records(source: str, data_root: Path, out_dir: Path, path: Path | None, check: bool) -> tuple[list, dict]:
    if source in PATH_SOURCES:
        if path is None:
            raise ValueError(f"source {source}: needs a path (the user-supplied val folder, one folder per synset)")
        return _zero_shot(path, out_dir, check)
    if path is not None:
        raise ValueError(f"source {source}: takes no path (it is read from the data root {data_root})")
    return _paired(source, data_root, out_dir, check)


def import_benchmark(source: str, data_root: str | Path, out_dir: str | Path, path: str | Path | None = None,
                     check_count: bool = True) -> dict:
    """Write the benchmark folder of real set ``source`` to ``out_dir`` (atomically); returns its ``meta.json``.

    ``data_root`` is where ``lotlip fetch`` put the catalog datasets; ``path`` is ImageNet's val folder (only for
    ``imagenet``). ``check_count`` enforces the protocol sizes (off for tiny fixtures). A missing file raises
    ``FileNotFoundError`` naming it and the catalog datasets (and their manual steps) it should come from.
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: unknown (known: {', '.join(SOURCES)})")
    out_dir, data_root = Path(out_dir), Path(data_root)
    try:
        records, extra = _records(source, data_root, out_dir, None if path is None else Path(path), check_count)
    except FileNotFoundError as exc:
        needs = ", ".join(SOURCES[source].datasets) or "a user-supplied folder"
        raise FileNotFoundError(f"{exc} (source {source} needs: {needs}; see config/datasets.yaml, including its "
                                f"manual steps)") from None
    if not records:
        raise ValueError(f"source {source}: no images found (data root {data_root})")
    meta = {"kind": SOURCES[source].kind, "source": source, "n_images": len(records), **extra}
    with atomic_dir(out_dir) as tmp:
        with open(tmp / "texts.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
