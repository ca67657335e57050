"""Atomic, durable writes: every output appears whole or not at all (temp file/folder + ``os.replace``), and once
written it survives a power loss (the temp file is fsynced before the rename, its folder after it).

A write that fails (full disk, quota, read-only folder, a file where a folder should be) raises
:class:`WriteError` naming the output, which ``lotlip.cli`` prints as one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

_UMASK = os.umask(0)
os.umask(_UMASK)

#: errors only a write causes: full disk, quota, file size limit, read-only file system
WRITE_ONLY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
#: errors a write causes (also a read, when they name another file): the above, no permission, a file where a
#: folder should be (or the reverse)
WRITE_ERRNOS = WRITE_ONLY_ERRNOS | {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR}


class WriteError(OSError):
    """An output that could not be written: ``filename`` is the output, ``strerror`` the cause."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def describe_os_error(exc: OSError) -> str | None:
    """One line for a failed write (``cannot write <file>: <cause>``), None for any other ``OSError``."""
    if isinstance(exc, WriteError):
        return str(exc)
    if exc.errno in WRITE_ONLY_ERRNOS:
        return f"cannot write {exc.filename}: {exc.strerror}" if exc.filename else \
            f"cannot write an output: {exc.strerror} (file not known)"
    if exc.errno in WRITE_ERRNOS and exc.filename:
        return f"{exc.filename}: {exc.strerror}"  # e.g. no permission: to read or to write
    return None


def _within(name: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """``name`` is ``folder`` or lies below it."""
    path, folder = os.path.abspath(name), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _is_temp_of(name: str, path: Path) -> bool:
    """``name`` is (or would have been) a temp file or folder of ``atomic_*(path)``: ``.<name>.XXXX.tmp`` beside it."""
    return (os.path.dirname(os.path.abspath(name)) == os.path.abspath(path.parent)
            and os.path.basename(name).startswith(f".{path.name}.") and name.endswith(".tmp"))


def _as_write_error(exc: OSError, path: Path, tmp_dir: Path | None = None) -> OSError:
    """``exc`` as a :class:`WriteError` naming ``path`` when it is a failed write of ``path``: unnamed (a write to
    an open file), or naming ``path``, its temp file or folder or a folder above it; a file inside the temp folder
    ``tmp_dir`` is named by its place in ``path``. Any other error is returned as it is (an input that cannot be
    read, say)."""
    name = None if exc.filename is None else os.fspath(exc.filename)
    inside = None
    if name is not None and tmp_dir is not None and _within(name, tmp_dir) and not _within(tmp_dir, name):
        inside = str(path / os.path.relpath(name, tmp_dir))
    if isinstance(exc, WriteError):
        return WriteError(exc.errno, exc.strerror, inside) if inside else exc
    if exc.errno not in WRITE_ERRNOS:
        return exc
    if name is None or os.path.abspath(name) == os.path.abspath(path) or _is_temp_of(name, path):
        return WriteError(exc.errno, exc.strerror, str(path))
    if inside:
        return WriteError(exc.errno, exc.strerror, inside)
    if _within(path, name):  # a folder above the output could not be made (or is a file)
        return WriteError(exc.errno, f"{exc.strerror} ({name})", str(path))
    return exc


def _raise_as_write_error(exc: OSError, path: Path, tmp_dir: Path | None = None) -> NoReturn:
    """Re-raise ``exc`` as :func:`_as_write_error` maps it (unchanged when it is not a failed write of ``path``)."""
    error = _as_write_error(exc, path, tmp_dir)
    if error is exc:
        raise exc
    raise error from exc


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Failed writes of ``path`` in the block (unnamed, or naming ``path`` or a folder above it) become a
    :class:`WriteError` naming ``path``; for outputs written in place (logs), not through :func:`atomic_path`."""
    try:
        yield
    except OSError as exc:
        _raise_as_write_error(exc, Path(path))


def fsync_path(path: str | Path) -> None:
    """Flush a file's (or folder's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """fsync every file and folder under ``folder`` (``folder`` included), folders after their content."""
    for parent, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            if stat.S_ISREG(os.lstat(os.path.join(parent, name)).st_mode):  # not links (the folder holds them)
                fsync_path(os.path.join(parent, name))
        fsync_path(parent)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Rename the finished ``tmp`` onto ``path`` so that a power loss leaves the old or the new ``path``, whole:
    ``tmp``'s content is fsynced before the rename, the folder holding both after it (the rename itself)."""
    (fsync_tree if os.path.isdir(tmp) else fsync_path)(tmp)
    os.replace(tmp, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` (durably, see :func:`publish`), on
    error it is removed. A failed write raises :class:`WriteError` naming ``path``."""
    path, tmp_path = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp_path
        publish(tmp_path, path)
    except OSError as exc:
        _raise_as_write_error(exc, path)
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` (old content dropped; durably, see
    :func:`publish`). A failed write raises :class:`WriteError` naming ``path`` (or the file in it)."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        publish(tmp, path)
    except OSError as exc:
        _raise_as_write_error(exc, path, tmp)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSON-lines file; a bad line raises naming the file and line number."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return records


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    """Write records as JSON lines atomically."""
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def write_csv_md(df: Any, csv_path: str | Path, markdown: str | None = None) -> None:
    """A table as CSV plus its Markdown rendering beside it (``.md``), each written atomically.

    ``markdown`` defaults to the frame's plain ``to_markdown``; callers with captions or grouped headers pass
    their own.
    """
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    write_text(csv_path.with_suffix(".md"), markdown if markdown is not None else df.to_markdown(index=False) + "\n")
