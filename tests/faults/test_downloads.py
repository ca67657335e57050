"""Fault 6: downloads and archives. A 404, connection resets or refusals, a checksum mismatch, a truncated archive,
archive members with ``../``, an absolute path or a link leading outside the target, and a full disk while
downloading or unpacking each end ``lotlip fetch`` / ``lotlip fetch-model`` with exactly one line on stderr and
exit status 2 (no traceback), and nothing is extracted outside the target (nor a half target or marker left).

``tests/data/test_download.py`` covers ``download`` and ``extract`` one by one (resume, retries, each unsafe member
kind); here the faults go through the commands the fetch rules run (``lotlip fetch``, ``lotlip fetch-model``) and
add chained-link escapes.
"""

from __future__ import annotations

import hashlib
import socket
import stat
import subprocess
import tarfile
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from lotlip.cli import main
from lotlip.data import download as download_module
from lotlip.data.extract import ArchiveError
from tests.data.test_download import _file, _link, _tar
from tests.faults.conftest import BIN, env_with_bin, file_size_limit

pytest_plugins = ["tests.http_fixture"]  # http_server: a 127.0.0.1 file server with fault switches

PAYLOAD = b"x" * 200_000


class _Always(dict):
    """``FileServer.reset_after`` whose entries stay: the connection is cut on every request."""

    def pop(self, key, default=None):
        return self.get(key, default)


def _one_line(capsys, command: str) -> str:
    """stderr is exactly one line, ``lotlip <command>: error: ...`` (no traceback: ``main`` returned)."""
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"lotlip {command}: error: "), err
    return err.strip()


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


@pytest.fixture
def no_backoff(monkeypatch):
    """Retries without the waits between them (``lotlip fetch-model`` retries 5 times, from 1 s doubling)."""
    monkeypatch.setattr(download_module, "time", SimpleNamespace(sleep=lambda seconds: None))


def test_connection_cut_on_every_attempt_gives_up_in_one_line(http_server, tmp_path, capsys, no_backoff):
    url = http_server.add("model.pt", PAYLOAD)
    http_server.reset_after = _Always({"model.pt": 0})
    out = tmp_path / "models" / "model.pt"
    assert main(["fetch-model", "--url", url, "--out", str(out)]) == 2
    err = _one_line(capsys, "fetch-model")
    assert url in err and "giving up after 5 retries" in err, err
    assert len(http_server.requests) == 6 and not out.exists()


def test_connection_refused_gives_up_in_one_line(tmp_path, capsys, no_backoff):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.pt"
    out = tmp_path / "models" / "model.pt"
    assert main(["fetch-model", "--url", url, "--out", str(out)]) == 2
    err = _one_line(capsys, "fetch-model")
    assert url in err and "giving up after 5 retries" in err and "Connection" in err, err
    assert not out.exists()


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


def _fetch_argv(http_server, tmp_path, archive: Path, sha256: str | None = None) -> tuple[list[str], Path]:
    """``lotlip fetch`` arguments for a one-archive catalog dataset (unpacked to ``demo/pack``), the data root."""
    url = http_server.add(archive.name, archive.read_bytes())
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"datasets": {"demo": {"loader": "load_dci", "files": [
        {"url": url, "sha256": sha256, "size": None, "extract_to": "demo/pack"}]}}}))
    root = tmp_path / "box" / "data"
    return ["fetch", "--dataset", "demo", "--root", str(root), "--catalog", str(catalog),
            "--out", str(root / ".fetched" / "demo.json")], root


def _fetch(http_server, tmp_path, archive: Path, sha256: str | None = None) -> tuple[int, str, Path]:
    """``lotlip fetch`` of a one-archive catalog dataset: (exit status, error text, data root)."""
    argv, root = _fetch_argv(http_server, tmp_path, archive, sha256)
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
    assert rc == 2 and not raised, raised
    error = _one_line(capsys, "fetch")
    assert reason in error and str(root / "downloads" / archive.name) in error, error
    _nothing_escaped(tmp_path, root)


@pytest.mark.parametrize("case", ["dot-dot", "zip-absolute", "symlink-chain", "truncated-archive"])
def test_bad_archive_is_one_line(case, http_server, tmp_path, capsys):
    archive, reason = _archive(tmp_path, case)
    rc, raised, _ = _fetch(http_server, tmp_path, archive)
    assert rc == 2 and not raised
    assert reason in _one_line(capsys, "fetch")


# --- a full disk while downloading or unpacking, in a real process --------------------------------------------

@pytest.mark.parametrize("stage", ["download", "extract"])
def test_full_disk_is_one_line_naming_the_file(stage, http_server, tmp_path):
    """``lotlip fetch-model`` / ``lotlip fetch`` with writes past 64 kB failing (EFBIG, as on a full disk): the
    process's whole stderr is one line naming the file and the cause, exit status 2."""
    root = tmp_path / "data"
    if stage == "download":
        out = root / "model.pt"
        argv, named = ["fetch-model", "--url", http_server.add("model.pt", PAYLOAD), "--out", str(out)], out
    else:  # the archive (1 kB) downloads; its one member (300 kB) cannot be unpacked
        archive = _tar(tmp_path / "pack.tar.gz", [_file("big.bin", bytes(300_000))])
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        argv, root = _fetch_argv(http_server, tmp_path, archive, sha)
        named = root / "demo" / "pack"
    done = subprocess.run([str(BIN / "lotlip"), *argv], capture_output=True, text=True, env=env_with_bin(),
                          preexec_fn=file_size_limit(64_000), timeout=300)
    assert done.returncode == 2, done.stderr
    command = argv[0]
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"lotlip {command}: error: cannot write {named}"), done.stderr
    assert "File too large" in done.stderr, done.stderr
