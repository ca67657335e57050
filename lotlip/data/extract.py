"""Safe extraction of .tar / .tar.gz / .tgz / .zip archives.

Every member is checked before it is written: absolute paths, ``..`` components, links resolving outside the
target and device files (character, block, FIFO) are refused. Extraction happens in a temp folder beside the
target that is renamed onto it at the end (``atomic_dir``); any failure, a truncated archive included, leaves
nothing behind.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from lotlip.io import atomic_dir

READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile)


class ArchiveError(RuntimeError):
    """An archive that is unsafe, truncated or corrupt."""


def archive_kind(path: str | Path) -> str:
    """``"zip"`` or ``"tar"`` (by suffix, else by content)."""
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise ArchiveError(f"{path}: not a tar or zip archive")


def _check_name(archive: Path, name: str) -> None:
    """Refuse absolute member names and ``..`` components."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[0].isalpha() and name[1] == ":"):
        raise ArchiveError(f"{archive}: member {name!r} refused: absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise ArchiveError(f"{archive}: member {name!r} refused: '..' component")


def _check_link(archive: Path, name: str, link: str, base: str) -> None:
    """Refuse a link whose target (relative to ``base`` inside the archive) leaves the archive root."""
    if link.startswith(("/", "\\")):
        raise ArchiveError(f"{archive}: member {name!r} refused: link to absolute path {link!r}")
    resolved = posixpath.normpath(posixpath.join(base, link))
    if resolved == ".." or resolved.startswith("../"):
        raise ArchiveError(f"{archive}: member {name!r} refused: link {link!r} points outside the target")


def _inside(root: Path, path: Path) -> bool:
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([real_root, real]) == real_root


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    _check_name(archive, member.name)
    if member.isdev():
        raise ArchiveError(f"{archive}: member {member.name!r} refused: device file")
    if member.issym():
        _check_link(archive, member.name, member.linkname, posixpath.dirname(member.name))
    elif member.islnk():
        _check_link(archive, member.name, member.linkname, "")


def _extract_tar(archive: Path, tmp: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            _check_tar_member(archive, member)
            try:
                tar.extract(member, tmp, filter="data")  # second line of defence (realpath checks)
            except tarfile.FilterError as exc:
                raise ArchiveError(f"{archive}: member {member.name!r} refused: {exc}") from None


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def _extract_zip_member(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, tmp: Path) -> None:
    name, mode = info.filename, _zip_mode(info)
    _check_name(archive, name)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise ArchiveError(f"{archive}: member {name!r} refused: device file")
    dest = tmp / name
    if not _inside(tmp, dest if info.is_dir() else dest.parent):
        raise ArchiveError(f"{archive}: member {name!r} refused: written through a link outside the target")
    if info.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISLNK(mode):
        link = zf.read(info).decode("utf-8")
        _check_link(archive, name, link, posixpath.dirname(name.rstrip("/")))
        os.symlink(link, dest)
        return
    with zf.open(info) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _extract_zip(archive: Path, tmp: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _extract_zip_member(archive, zf, info, tmp)


def extract(archive: str | Path, target: str | Path, overwrite: bool = False) -> Path:
    """Extract ``archive`` into folder ``target`` (created whole or not at all); returns ``target``.

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is false.
        ArchiveError: an unsafe member, or a truncated or corrupt archive (the message names the file).
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: already exists (pass overwrite=True to replace it)")
    kind = archive_kind(archive)
    with atomic_dir(target) as tmp:
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp)
        except ArchiveError:
            raise
        except READ_ERRORS as exc:
            raise ArchiveError(f"{archive}: truncated or corrupt {kind} archive ({type(exc).__name__}: {exc})") \
                from None
    return target
