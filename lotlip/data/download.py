"""Resumable, verified downloads, and fetching the datasets of the catalog (:mod:`lotlip.catalog`).

``download`` streams to ``dest + ".part"``, resumes with an HTTP Range request, retries connection errors and
5xx answers with exponential backoff (a local write error such as a full disk fails at once, a
``lotlip.io.WriteError`` naming the part file), checks size and sha256, then renames the part file onto ``dest``
(``lotlip.io.publish``: fsynced, so the file appears whole or not at all, power loss included). A null
checksum means "not verified": a warning is logged with the actual hash so it can be recorded in the catalog.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import requests
import urllib3

from lotlip.catalog import load_catalog
from lotlip.data.extract import extract
from lotlip.io import WriteError, publish, writing

log = logging.getLogger(__name__)

CHUNK = 1 << 20
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A download that cannot succeed (missing file, bad checksum, retries exhausted)."""


class _Transient(Exception):
    """A failure worth retrying (connection error, 5xx, short body)."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, url: str, sha256: str | None, size: int | None) -> None:
    """Check size and checksum of a finished file; on mismatch delete it and raise."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: size mismatch, expected {size} bytes, got {actual_size}")
    actual = sha256_file(path)
    if sha256 is None:
        log.warning("%s: no sha256 recorded, not verified (actual sha256 %s)", url, actual)
    elif actual.lower() != sha256.lower():
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: sha256 mismatch, expected {sha256.lower()}, got {actual}; file removed")


def _present(dest: Path, url: str, sha256: str | None, size: int | None) -> bool:
    """True if ``dest`` already holds the right file (no network needed); a wrong file is removed."""
    if not dest.is_file():
        return False
    if size is not None and dest.stat().st_size != size:
        log.warning("%s: present with the wrong size, downloading again", dest)
        dest.unlink()
        return False
    if sha256 is None:
        log.warning("%s: already present, no sha256 recorded, not verified", dest)
        return True
    if sha256_file(dest).lower() == sha256.lower():
        return True
    log.warning("%s: present with the wrong sha256, downloading again", dest)
    dest.unlink()
    return False


def _expected_total(resp: requests.Response, offset: int) -> int | None:
    """Total file size the server announces (Content-Range or Content-Length), if any."""
    content_range = resp.headers.get("Content-Range", "")
    if resp.status_code == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _range_start(resp: requests.Response) -> int | None:
    """First byte of a 206 answer (``Content-Range: bytes a-b/n``)."""
    value = resp.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _open(url: str, offset: int, timeout: float) -> requests.Response:
    """GET ``url`` asking for the bytes from ``offset``: 404 and other client errors raise ``DownloadError``."""
    headers = {"Accept-Encoding": "identity"}  # byte-exact body: no transparent decompression
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    if resp.status_code == 416 or resp.status_code < 400:
        return resp
    resp.close()
    if resp.status_code in RETRY_STATUS:
        raise _Transient(f"HTTP {resp.status_code}")
    raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}")


def _body_start(resp: requests.Response, url: str, offset: int, part: Path) -> int:
    """Where the body of ``resp`` starts in the file (0 when the server ignored the Range request)."""
    if resp.status_code == 206:
        if _range_start(resp) == offset:
            return offset
        part.unlink(missing_ok=True)
        raise _Transient(f"unexpected Content-Range {resp.headers.get('Content-Range')!r}, restarting")
    if offset:
        log.warning("%s: server ignored the Range request, restarting from byte 0", url)
    return 0


LOCAL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                errno.EISDIR}


def _local_write_error(exc: BaseException) -> bool:
    """True for an error of the local file system (not of the connection): full disk, quota, read-only, ..."""
    return (isinstance(exc, OSError) and not isinstance(exc, requests.RequestException)
            and exc.errno in LOCAL_ERRNOS)


def _attempt(url: str, part: Path, timeout: float) -> None:
    """One GET appending to ``part``; raises ``_Transient`` when it should be retried."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset, timeout)
    try:
        if resp.status_code == 416:
            if resp.headers.get("Content-Range", "").endswith(f"/{offset}"):
                return  # the part file already holds the whole body
            part.unlink(missing_ok=True)
            raise _Transient("HTTP 416 Range Not Satisfiable, restarting from byte 0")
        start = _body_start(resp, url, offset, part)
        total = _expected_total(resp, start)
        with open(part, "ab" if start else "wb") as fh:
            for block in resp.raw.stream(CHUNK, decode_content=False):
                fh.write(block)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if _local_write_error(exc):  # a full disk or a read-only folder: retrying cannot help
            raise WriteError(exc.errno, f"{exc.strerror} (downloading {url})", str(part)) from None
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    finally:
        resp.close()
    written = part.stat().st_size
    if total is not None and written != total:
        if written > total:
            part.unlink()
        raise _Transient(f"body ended at byte {written} of {total}")


def download(url: str, dest: str | Path, sha256: str | None = None, size: int | None = None, retries: int = 5,
             backoff: float = 1.0, timeout: float = 60) -> Path:
    """Fetch ``url`` to ``dest`` (resumable, retried, verified); returns ``dest``.

    Args:
        sha256: expected hex digest; None means not verified (a warning is logged).
        size: expected size in bytes, or None.
        retries: retries after consecutive failures that made no progress.
        backoff: first wait in seconds, doubled at each retry.
    """
    dest = Path(dest)
    if _present(dest, url, sha256, size):
        return dest
    with writing(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures, best = 0, -1
    while True:
        try:
            _attempt(url, part, timeout)
            break
        except _Transient as exc:
            done = part.stat().st_size if part.exists() else 0
            if done > best:  # progress made: a resume is worth more tries
                failures, best = 0, done
            failures += 1
            if failures > retries:
                raise DownloadError(f"{url}: giving up after {retries} retries ({exc})") from None
            wait = backoff * 2 ** (failures - 1)
            log.warning("%s: %s; retry %d/%d in %.1fs (have %d bytes)", url, exc, failures, retries, wait, done)
            time.sleep(wait)
    _verify(part, url, sha256, size)
    with writing(dest):
        publish(part, dest)  # fsynced before and after the rename: a power loss leaves no torn file
    return dest


def _fetch_file(spec: dict, root: Path, **kwargs: Any) -> Path:
    """Download one catalog file (trying mirrors on 404) and extract it if it is an archive."""
    urls = list(spec.get("urls") or [spec["url"]])
    name = spec.get("dest") or Path(urls[0].split("?")[0]).name
    dest = root / name if "dest" in spec else root / "downloads" / name
    if "extract_to" in spec and (root / spec["extract_to"]).exists():
        return root / spec["extract_to"]  # extraction is atomic: present means complete
    for i, url in enumerate(urls):
        try:
            download(url, dest, spec.get("sha256"), spec.get("size"), **kwargs)
            break
        except DownloadError as exc:
            if "HTTP 404" not in str(exc) or i == len(urls) - 1:
                raise
            log.warning("%s; trying the next mirror", exc)
    if "extract_to" not in spec:
        return dest
    return extract(dest, root / spec["extract_to"])


def fetch(name: str, root: str | Path, catalog: dict[str, dict] | None = None, **kwargs: Any) -> list[Path]:
    """Download (and extract) every file of catalog dataset ``name`` under ``root``; logs manual steps."""
    catalog = load_catalog() if catalog is None else catalog
    if name not in catalog:
        raise KeyError(f"dataset {name!r} is not in the catalog (known: {', '.join(sorted(catalog))})")
    entry = catalog[name]
    paths = [_fetch_file(spec, Path(root), **kwargs) for spec in entry.get("files") or []]
    for step in entry.get("manual") or []:
        log.warning("%s: manual step: %s", name, step)
    return paths
