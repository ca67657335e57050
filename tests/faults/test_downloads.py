"""Fault 6: downloads and archives. A 404, connection resets or refusals, a checksum mismatch, a truncated archive
and archive members with ``../``, an absolute path or a link leading outside the target are clear errors, and
nothing is extracted outside the target (nor a half target or marker left).

``tests/test_download.py`` covers ``download`` and ``extract`` one by one (resume, retries, each unsafe member
kind); here the faults go through the commands the fetch rules run (``lotlip fetch``, ``lotlip fetch-model``) and
add chained-link escapes.
"""

from __future__ import annotations

import hashlib
import socket
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml

from lotlip.cli import main
from lotlip.data.download import DownloadError, download
from lotlip.data.extract import ArchiveError
from tests.test_download import _file, _link, _tar

pytest_plugins = ["tests.http_fixture"]  # http_server: a 127.0.0.1 file server with fault switches

PAYLOAD = b"x" * 200_000


class _Always(dict):
    """``FileServer.reset_after`` whose entries stay: the connection is cut on every request."""

    def pop(self, key, default=None):
        return self.get(key, default)


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lotlip {command}: error: ") and "\n" not in err, err
    return err


def test_404_is_one_line_naming_the_url_and_nothing_is_written(http_server, tmp_path, capsys):
    url = http_server.url("missing/model.pt")
    out = tmp_path / "models" / "model.pt"
    assert main(["fetch-model", "--url", url, "--out", str(out)]) == 2
    err = _one_line(capsys, "fetch-model")
    assert url in err and "404" in err
    assert not out.exists() and not out.with_name("model.pt.part").exists()
    assert len(http_server.requests) == 1  # a 404 is not retried


def test_checksum_mismatch_is_one_line_and_removes_the_file(http_server, tmp_path, capsys):
    url = http_server.add("model.pt", PAYLOAD)
    out = tmp_path / "models" / "model.pt"
    assert main(["fetch-model", "--url", url, "--sha256", "0" * 64, "--out", str(out)]) == 2
    err = _one_line(capsys, "fetch-model")
    assert url in err and "0" * 64 in err and hashlib.sha256(PAYLOAD).hexdigest() in err
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_connection_cut_on_every_attempt_gives_up_clearly(http_server, tmp_path):
    url = http_server.add("model.pt", PAYLOAD)
    http_server.reset_after = _Always({"model.pt": 0})
    with pytest.raises(DownloadError, match="giving up after 2 retries") as err:
        download(url, tmp_path / "model.pt", retries=2, backoff=0)
    assert url in str(err.value) and "\n" not in str(err.value)
    assert len(http_server.requests) == 3 and not (tmp_path / "model.pt").exists()


def test_connection_refused_gives_up_clearly(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.pt"
    with pytest.raises(DownloadError, match="giving up after 1 retries") as err:
        download(url, tmp_path / "model.pt", retries=1, backoff=0)
    assert url in str(err.value) and "Connection" in str(err.value)
    assert not (tmp_path / "model.pt").exists()


# --- archives through `lotlip fetch` ----------------------------------------------------------------------

ABSOLUTE = Path("/tmp") / f"lotlip-faults-{uuid.uuid4().hex}" / "evil.txt"


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, None


def _chained_tar() -> list:
    """``a/b -> ..`` (inside) and ``a/c -> b/..`` (lexically ``a``, really the target's parent), then a file
    written through ``a/c``."""
    return [_dir("a"), _link("a/b", ".."), _link("a/c", "b/.."), _file("a/c/evil.txt")]


TAR_MEMBERS = {
    "dot-dot": ([_file("../evil.txt")], "'..' component"),
    "dot-dot-deep": ([_file("ok/../../evil.txt")], "'..' component"),
    "absolute": ([_file(str(ABSOLUTE))], "absolute path"),
    "symlink-outside": ([_link("escape", "../../evil.txt")], "points outside"),
    "symlink-absolute": ([_link("escape", str(ABSOLUTE.parent))], "absolute path"),
    "hardlink-outside": ([_link("hard", "../evil.txt", tarfile.LNKTYPE)], "points outside"),
    "hardlink-absolute": ([_link("hard", "/etc/passwd", tarfile.LNKTYPE)], "absolute path"),
    "symlink-chain": (_chained_tar(), "refused"),
    "symlink-then-write-through": ([_link("d", "."), _link("d/up", ".."), _file("d/up/evil.txt")], "refused"),
}


def _zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", "ok")
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


LINK = stat.S_IFLNK | 0o777
ZIP_MEMBERS = {
    "zip-backslash-dot-dot": ([("..\\evil.txt", b"x", 0o644)], "'..' component"),
    "zip-absolute": ([(str(ABSOLUTE), b"x", 0o644)], "absolute path"),
    "zip-drive-letter": ([("C:\\evil.txt", b"x", 0o644)], "absolute path"),
    "zip-symlink-outside": ([("escape", b"../../evil.txt", LINK)], "points outside"),
    "zip-symlink-chain": ([("a/b", b"..", LINK), ("a/c", b"b/..", LINK), ("a/c/evil.txt", b"x", 0o644)],
                          "refused"),
}
def _fetch(http_server, tmp_path, archive: Path, sha256: str | None = None) -> tuple[int, str, Path]:
    """``lotlip fetch`` of a one-archive catalog dataset: (exit status, error text, data root)."""
    url = http_server.add(archive.name, archive.read_bytes())
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"datasets": {"demo": {"loader": "load_dci", "files": [
        {"url": url, "sha256": sha256, "size": None, "extract_to": "demo/pack"}]}}}))
    root = tmp_path / "box" / "data"
    argv = ["fetch", "--dataset", "demo", "--root", str(root), "--catalog", str(catalog),
            "--out", str(root / ".fetched" / "demo.json")]
    try:
        return main(argv), "", root
    except ArchiveError as exc:  # what the process would die with (a traceback)
        return 1, f"{type(exc).__name__}: {exc}", root


def _archive(tmp_path: Path, case: str) -> tuple[Path, str]:
    if case in TAR_MEMBERS:
        members, reason = TAR_MEMBERS[case]
        return _tar(tmp_path / "pack.tar.gz", [_file("fine.txt"), *members]), reason
    if case in ZIP_MEMBERS:
        members, reason = ZIP_MEMBERS[case]
        return _zip(tmp_path / "pack.zip", members), reason
    archive = _tar(tmp_path / "pack.tar.gz", [_file("fine.txt"), _file("big.bin", bytes(range(256)) * 2000)])
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # "truncated": sha256 unknown
    return archive, "truncated or corrupt"


def _nothing_escaped(tmp_path: Path, root: Path) -> None:
    assert not (root / "demo" / "pack").exists() and not (root / ".fetched" / "demo.json").exists()
    assert not (root / "demo").exists() or list((root / "demo").iterdir()) == []  # no temp folder either
    assert [p for p in tmp_path.rglob("*evil*")] == []
    assert not ABSOLUTE.exists() and not ABSOLUTE.parent.exists()


CASES = [*TAR_MEMBERS, *ZIP_MEMBERS, "truncated-archive"]


@pytest.mark.parametrize("case", CASES)
def test_bad_archive_is_refused_and_nothing_escapes(case, http_server, tmp_path, capsys):
    archive, reason = _archive(tmp_path, case)
    sha = None if case == "truncated-archive" else hashlib.sha256(archive.read_bytes()).hexdigest()
    rc, raised, root = _fetch(http_server, tmp_path, archive, sha)
    assert rc != 0
    error = capsys.readouterr().err + raised
    assert reason in error and str(root / "downloads" / archive.name) in error, error
    _nothing_escaped(tmp_path, root)


@pytest.mark.parametrize("case", ["dot-dot", "zip-absolute", "symlink-chain", "truncated-archive"])
def test_bad_archive_is_one_line(case, http_server, tmp_path, capsys):
    archive, reason = _archive(tmp_path, case)
    rc, raised, _ = _fetch(http_server, tmp_path, archive)
    assert rc == 2 and not raised
    assert reason in _one_line(capsys, "fetch")
