"""The dataset catalog (``config/datasets.yaml``) and the real evaluation sources that read it.

Torch-free and network-free: the config schema and the workflow planner read it at parse time. Downloading is
:mod:`lotlip.data.download`; turning fetched files into benchmark folders is :mod:`lotlip.data.import_real`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATALOG = Path(__file__).resolve().parents[1] / "config" / "datasets.yaml"


class CatalogError(ValueError):
    """The catalog file is missing, not YAML, or an entry lacks a field; the message names file and field."""


@dataclass(frozen=True)
class Source:
    """A real evaluation set: its benchmark kind, the catalog datasets its files come from, and whether it is
    read from a user-supplied path instead of the data root."""

    kind: str
    datasets: tuple[str, ...]
    needs_path: bool = False


SOURCES: dict[str, Source] = {
    "dci": Source("long", ("dci",)),
    "iiw": Source("long", ("iiw", "dci", "docci")),  # IIW's images are DCI and DOCCI (+ AAR) photos
    "docci": Source("long", ("docci",)),
    "sharegpt4v-1k": Source("long", ("sharegpt4v",)),
    "sharegpt4v-10k": Source("long", ("sharegpt4v",)),
    "urban1k": Source("long", ("urban1k",)),
    "mscoco-5k": Source("short", ("mscoco",)),
    "flickr30k-1k": Source("short", ("flickr30k",)),
    "flickr30k-full": Source("short", ("flickr30k",)),  # Long-CLIP's: the whole token file
    "imagenet": Source("zeroshot", (), needs_path=True),  # user-supplied folder, one sub-folder per synset
}
PATH_SOURCES = tuple(name for name, src in SOURCES.items() if src.needs_path)


def load_catalog(path: str | Path = CATALOG) -> dict[str, dict]:
    """The ``datasets`` mapping of a catalog file, each entry and file spec checked for its required fields.

    Raises:
        CatalogError: one line naming the file and the field.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text (offset {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise CatalogError(f"{path}: not valid YAML{at}") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise CatalogError(f"{path}: field 'datasets' missing or not a mapping")
    for name, entry in data["datasets"].items():
        where = f"{path}: datasets.{name}"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: not a mapping")
        files = entry.get("files") or []
        if not isinstance(files, list):
            raise CatalogError(f"{where}.files: not a list")
        for i, spec in enumerate(files):
            _check_file_spec(spec, f"{where}.files[{i}]")
    return data["datasets"]


def _check_file_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: not a mapping")
    if not (spec.get("url") or spec.get("urls")):
        raise CatalogError(f"{where}: field 'url' missing")
    if ("dest" in spec) == ("extract_to" in spec):
        raise CatalogError(f"{where}: exactly one of 'dest' (plain file) or 'extract_to' (archive) is required")
