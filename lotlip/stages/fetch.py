"""Stage ``fetch``: download catalog datasets (one fetcher per data root at a time), model weights, and write real
evaluation sets as benchmark folders."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from lotlip.io import write_json

log = logging.getLogger(__name__)

LOCK_NAME = ".fetch.lock"  # under the data root: concurrent fetches share download and extraction folders


@contextlib.contextmanager
def fetch_lock(root: Path) -> Iterator[None]:
    """Hold the exclusive lock file of data root ``root`` (e.g. two datasets both extracting karpathy/)."""
    path = root / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_dataset(dataset: str, root: Path, out: Path, catalog: Path | None = None) -> list[Path]:
    """Download and extract one catalog dataset under ``root``; write the marker ``out`` naming its files (and its
    manual steps). Returns the fetched paths."""
    from lotlip.catalog import CATALOG, load_catalog
    from lotlip.data.download import fetch

    catalog = catalog or CATALOG
    entries = load_catalog(catalog)
    if dataset not in entries:
        raise ValueError(f"{catalog}: no dataset {dataset!r} (known: {', '.join(sorted(entries))})")
    with fetch_lock(root):
        paths = fetch(dataset, root, entries)
    manual = list(entries[dataset].get("manual") or [])
    write_json(out, {"dataset": dataset, "paths": [str(p) for p in paths], "manual_steps": manual})
    log.info("fetched %s: %d file(s); %d manual step(s) logged", dataset, len(paths), len(manual))
    return paths


def fetch_model(url: str, out: Path, sha256: str | None = None) -> None:
    """Download one weights file (resumable; checksummed when ``sha256`` is given)."""
    from lotlip.data.download import download

    download(url, out, sha256 or None)
    log.info("downloaded %s to %s", url, out)


def import_real_benchmark(source: str, data_root: Path, out: Path, path: Path | None = None,
                          check_count: bool = True) -> dict:
    """Write a fetched real evaluation set as a benchmark folder (texts + image paths); returns its metadata."""
    from lotlip.data.import_real import import_benchmark

    meta = import_benchmark(source, data_root, out, path, check_count=check_count)
    log.info("imported %s: %s", source, meta)
    return meta
