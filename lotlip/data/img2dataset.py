"""Real training images through img2dataset: run it on a url table, read its webdataset output.

img2dataset (https://github.com/rom1504/img2dataset) writes ``<shard>.tar`` (``<key>.jpg`` + ``.txt`` + ``.json``
for each downloaded image), ``<shard>.parquet`` and ``<shard>_stats.json`` per shard of ``number_sample_per_shard``
url rows, with ``<shard>`` = 5 digits and ``<key>`` = ``shard * 10**d + row in shard`` zero-padded to ``5 + d``
digits, ``d = ceil(log10(number_sample_per_shard))``. It runs in its own environment (it pins
``webdataset < 0.3``), so it is called as a command. :func:`download_images` downloads into ``<out>.partial``
(img2dataset's incremental mode skips finished shards, so an interrupted download of the same url list with the
same settings resumes; anything else starts over) and renames it to
``<out>`` once complete, with ``sizes.json`` and ``source.json`` added.

Keys: every sample is named by its 9-digit data-row index in the url table (:func:`row_key`), the key
:mod:`lotlip.relabel.precomputed` gives the released caption rows, so captions join images whatever the shard size.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import webdataset as wds

from lotlip.data.sizes import read_sizes, write_sizes
from lotlip.io import write_json

log = logging.getLogger(__name__)

# in <out>.partial: what is being downloaded (a resume must match it); not *.json, which img2dataset's
# incremental mode reads as shard stats
REQUEST_FILE = ".lotlip-request"
SOURCE_FILE = "source.json"  # marks a world folder as img2dataset output; holds the shard size keys depend on
IMAGE_FIELDS = ("jpg", "png", "webp", "jpeg")


class Img2DatasetError(ValueError):
    """img2dataset failed, or its output folder is not in its published layout."""


@dataclass(frozen=True)
class ImageSample:
    """One downloaded image: its row key, encoded bytes and their extension, alt-text and url."""

    key: str
    image: bytes
    ext: str
    caption: str
    url: str


def row_key(key: str, samples_per_shard: int) -> str:
    """img2dataset's sample key -> the 9-digit data-row index of the url table."""
    digits = math.ceil(math.log10(samples_per_shard)) if samples_per_shard > 1 else 0
    if not key.isdigit() or len(key) <= digits:
        raise Img2DatasetError(f"sample key {key!r}: expected digits '<shard><row in shard>' "
                               f"({digits} row digits for {samples_per_shard} samples per shard)")
    shard, row = (int(key[:-digits]), int(key[-digits:])) if digits else (int(key), 0)
    return f"{shard * samples_per_shard + row:09d}"


def img2dataset_command(cfg: Any, url_list: str | Path, out_dir: str | Path) -> list[str]:
    """The img2dataset command line for ``world.img2dataset`` settings ``cfg`` (webdataset output)."""
    args = [cfg.command, "--url_list", str(url_list), "--output_folder", str(out_dir),
            "--output_format", "webdataset", "--input_format", cfg.input_format, "--url_col", cfg.url_col,
            "--image_size", str(cfg.image_size), "--resize_mode", cfg.resize_mode,
            "--number_sample_per_shard", str(cfg.samples_per_shard), "--processes_count", str(cfg.processes),
            "--thread_count", str(cfg.threads), "--timeout", str(cfg.timeout_s), "--retries", str(cfg.retries),
            "--incremental_mode", "incremental", "--enable_wandb", "False"]
    if cfg.caption_col:
        args += ["--caption_col", cfg.caption_col]
    return args


def download_images(cfg: Any, url_list: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Run img2dataset on ``url_list`` into ``out_dir`` (resumable, atomic); returns shard -> images."""
    url_list, out_dir = Path(url_list), Path(out_dir)
    if not url_list.is_file():
        raise Img2DatasetError(f"{url_list}: url list not found (world.img2dataset.url_list; fetch its dataset first)")
    if shutil.which(cfg.command) is None:
        raise Img2DatasetError(f"world.img2dataset.command: {cfg.command!r} is not on PATH; install img2dataset in "
                               "its own environment (it pins webdataset < 0.3), e.g. `make img2dataset`")
    partial = out_dir.with_name(out_dir.name + ".partial")
    command = img2dataset_command(cfg, url_list, partial)
    request = {"command": command, "url_list_bytes": url_list.stat().st_size}
    if partial.is_dir() and _read_request(partial) != request:  # left by a download of other urls or settings
        log.warning("%s: left by a different download; starting over", partial)
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / REQUEST_FILE, request)
    log.info("running %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise Img2DatasetError(f"{cfg.command} exited with {done.returncode} for {url_list}; "
                               f"{partial} is kept and resumes on the next run:\n{tail}")
    return finish_download(partial, out_dir, url_list, cfg.samples_per_shard)


def _read_request(partial: Path) -> dict | None:
    try:
        return json.loads((partial / REQUEST_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def finish_download(partial: str | Path, out_dir: str | Path, url_list: str | Path,
                    samples_per_shard: int) -> dict[str, int]:
    """Check a complete img2dataset output folder, add ``sizes.json`` + ``source.json``, move it to ``out_dir``."""
    partial, out_dir = Path(partial), Path(out_dir)
    sizes = stats_sizes(partial)
    if not any(sizes.values()):
        raise Img2DatasetError(f"{url_list}: img2dataset downloaded no image (see {partial}/*_stats.json)")
    write_sizes(partial, sizes)
    write_json(partial / SOURCE_FILE, {"source": "img2dataset", "url_list": str(url_list),
                                       "samples_per_shard": samples_per_shard})
    shutil.rmtree(partial / "_tmp", ignore_errors=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return sizes


def stats_sizes(folder: str | Path) -> dict[str, int]:
    """Shard tar name -> images it holds, counted from img2dataset's ``<shard>_stats.json`` (``successes``); the
    record :func:`finish_download` keeps as ``sizes.json`` (:mod:`lotlip.data.sizes`)."""
    folder = Path(folder)
    sizes = {}
    for tar in sorted(folder.glob("*.tar")):
        stats = tar.with_name(tar.stem + "_stats.json")
        if not stats.is_file():
            raise Img2DatasetError(f"{stats}: missing; {tar.name} is an unfinished img2dataset shard")
        try:
            sizes[tar.name] = int(json.loads(stats.read_text())["successes"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise Img2DatasetError(f"{stats}: field 'successes' unreadable ({type(exc).__name__})") from None
    if not sizes:
        raise Img2DatasetError(f"{folder}: no img2dataset shards (<shard>.tar) found")
    return sizes


def is_img2dataset_world(folder: str | Path) -> bool:
    """Whether ``folder`` was written by :func:`download_images` (rather than the synthetic world)."""
    return (Path(folder) / SOURCE_FILE).is_file()


def read_source(folder: str | Path) -> dict:
    """``source.json`` of an img2dataset world folder (a clear error when it is not one)."""
    path = Path(folder) / SOURCE_FILE
    if not path.is_file():
        raise Img2DatasetError(f"{path}: not found; {folder} is not an img2dataset world (world.source)")
    return json.loads(path.read_text())


def iter_images(folder: str | Path) -> Iterator[ImageSample]:
    """Every downloaded image of an img2dataset world folder, in shard order, keyed by url-table row."""
    folder = Path(folder)
    per_shard = read_source(folder)["samples_per_shard"]
    urls = [str(folder / name) for name in sorted(read_sizes(folder))]
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False, nodesplitter=None):
        where = f"{sample.get('__url__', folder)}:{sample['__key__']}"
        ext = next((f for f in IMAGE_FIELDS if f in sample), None)
        if ext is None:
            raise Img2DatasetError(f"{where}: no image member ({', '.join(IMAGE_FIELDS)})")
        meta = json.loads(sample["json"]) if "json" in sample else {}
        caption = sample["txt"].decode("utf-8", "replace") if "txt" in sample else (meta.get("caption") or "")
        key = meta.get("key") or sample["__key__"]
        yield ImageSample(key=row_key(str(key), per_shard), image=sample[ext], ext=ext, caption=caption,
                          url=meta.get("url") or "")


def image_keys(folder: str | Path) -> list[str]:
    """Sorted row keys of every downloaded image, from tar member names alone (headers only: image data is skipped)."""
    folder = Path(folder)
    per_shard = read_source(folder)["samples_per_shard"]
    keys = []
    for name in sorted(read_sizes(folder)):
        with tarfile.open(folder / name) as tf:
            stems = [Path(m.name).name.split(".", 1) for m in tf if m.isfile()]
        keys += [row_key(stem, per_shard) for stem, ext in stems if ext in IMAGE_FIELDS]
    return sorted(keys)
