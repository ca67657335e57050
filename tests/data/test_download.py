"""Downloads (resume, retries, checksums, 404), safe extraction and the dataset catalog, all offline."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from lotlip.catalog import load_catalog
from lotlip.data import benchmarks
from lotlip.data.download import DownloadError, download, fetch
from lotlip.data.extract import ArchiveError, extract

pytest_plugins = ["tests.http_fixture"]

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- download --------------------------------------------------------------------------------------------

def test_download_resumes_after_a_connection_reset(http_server, tmp_path):
    url = http_server.add("big.bin", PAYLOAD)
    http_server.reset_after["big.bin"] = 100_000
    dest = download(url, tmp_path / "out" / "big.bin", sha256=SHA, size=len(PAYLOAD), backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.requests == [("big.bin", None), ("big.bin", "bytes=100000-")]
    assert _leftovers(dest.parent) == ["big.bin"]  # no .part left


def test_download_restarts_when_the_server_ignores_range(http_server, tmp_path):
    url = http_server.add("big.bin", PAYLOAD)
    http_server.reset_after["big.bin"] = 100_000
    http_server.ignore_range = True
    dest = download(url, tmp_path / "big.bin", sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert [r for _, r in http_server.requests] == [None, "bytes=100000-"]


def test_download_resumes_a_stale_part_file_and_accepts_a_complete_one(http_server, tmp_path):
    url = http_server.add("big.bin", PAYLOAD)
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1234])
    assert download(url, tmp_path / "a.bin", sha256=SHA).read_bytes() == PAYLOAD
    (tmp_path / "b.bin.part").write_bytes(PAYLOAD)  # crashed after the last byte: the server answers 416
    assert download(url, tmp_path / "b.bin", sha256=SHA).read_bytes() == PAYLOAD
    assert [r for _, r in http_server.requests] == ["bytes=1234-", f"bytes={len(PAYLOAD)}-"]


def test_checksum_mismatch_removes_the_file_and_names_url_and_hashes(http_server, tmp_path):
    url = http_server.add("big.bin", PAYLOAD)
    wrong = "0" * 64
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "big.bin", sha256=wrong, backoff=0)
    assert url in str(err.value) and wrong in str(err.value) and SHA in str(err.value)
    assert _leftovers(tmp_path) == ["served"]


def test_size_mismatch_is_an_error(http_server, tmp_path):
    url = http_server.add("big.bin", PAYLOAD)
    with pytest.raises(DownloadError, match="size mismatch"):
        download(url, tmp_path / "big.bin", size=len(PAYLOAD) + 1)
    assert not (tmp_path / "big.bin").exists()


def test_404_is_a_clear_error_without_retries(http_server, tmp_path):
    url = http_server.url("nothing.bin")
    with pytest.raises(DownloadError, match="404") as err:
        download(url, tmp_path / "nothing.bin", backoff=0)
    assert url in str(err.value)
    assert len(http_server.requests) == 1


def test_5xx_is_retried_then_given_up(http_server, tmp_path):
    url = http_server.add("big.bin", PAYLOAD)
    http_server.fail_status["big.bin"] = [503, 500]
    assert download(url, tmp_path / "big.bin", sha256=SHA, backoff=0).read_bytes() == PAYLOAD
    assert len(http_server.requests) == 3
    http_server.fail_status["big.bin"] = [503] * 10
    with pytest.raises(DownloadError, match="giving up after 2 retries"):
        download(url, tmp_path / "again.bin", retries=2, backoff=0)


def test_present_file_with_the_right_checksum_needs_no_network(tmp_path):
    dest = tmp_path / "big.bin"
    dest.write_bytes(PAYLOAD)
    unreachable = "http://127.0.0.1:9/big.bin"  # nothing listens there
    assert download(unreachable, dest, sha256=SHA, size=len(PAYLOAD)) == dest


def test_missing_checksum_is_accepted_with_a_warning(http_server, tmp_path, caplog):
    url = http_server.add("big.bin", PAYLOAD)
    with caplog.at_level(logging.WARNING, logger="lotlip.data.download"):
        download(url, tmp_path / "big.bin")
    assert "not verified" in caplog.text and SHA in caplog.text


# --- extraction ------------------------------------------------------------------------------------------

def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"hello") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_extracts_tar_gz_and_zip_with_inner_links(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [_file("d/x.txt", b"x"), _link("d/latest", "x.txt")])
    out = extract(archive, tmp_path / "a")
    assert (out / "d" / "x.txt").read_bytes() == b"x" and (out / "d" / "latest").read_bytes() == b"x"
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("top/sub/y.txt", "y")
    assert (extract(tmp_path / "b.zip", tmp_path / "b") / "top" / "sub" / "y.txt").read_text() == "y"
    assert _leftovers(tmp_path) == ["a", "a.tar.gz", "b", "b.zip"]


def test_existing_target_needs_overwrite(tmp_path):
    archive = _tar(tmp_path / "a.tar", [_file("new.txt")], mode="w")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "old.txt").write_text("old")
    with pytest.raises(FileExistsError):
        extract(archive, tmp_path / "t")
    extract(archive, tmp_path / "t", overwrite=True)
    assert _leftovers(tmp_path / "t") == ["new.txt"]


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar", ".zip"])
def test_truncated_archive_is_named_and_leaves_nothing(tmp_path, suffix):
    big = os.urandom(200_000)
    archive = tmp_path / f"a{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("big.bin", big)
    else:
        _tar(archive, [_file("small.txt"), _file("big.bin", big)], mode="w:gz" if suffix == ".tar.gz" else "w")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="truncated or corrupt") as err:
        extract(archive, tmp_path / "out")
    assert str(archive) in str(err.value)
    assert _leftovers(tmp_path) == [archive.name]


@pytest.mark.parametrize("member,reason", [
    (_file("../evil.txt"), "'..' component"),
    (_file("ok/../../evil.txt"), "'..' component"),
    (_file("/tmp/lotlip-abs-evil.txt"), "absolute path"),
    (_link("escape", "../../evil.txt"), "points outside"),
    (_link("escape", "/etc"), "absolute path"),
    (_link("hard", "../evil.txt", tarfile.LNKTYPE), "points outside"),
])
def test_unsafe_tar_members_are_refused(tmp_path, member, reason):
    box = tmp_path / "box"
    box.mkdir()
    archive = _tar(box / "a.tar.gz", [_file("fine.txt"), member, _file("escape/evil.txt")])
    with pytest.raises(ArchiveError, match=reason):
        extract(archive, box / "deep" / "out")
    assert _leftovers(box) == ["a.tar.gz", "deep"] and _leftovers(box / "deep") == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/lotlip-abs-evil.txt").exists()


def test_device_files_are_refused(tmp_path):
    info = tarfile.TarInfo("dev/null")
    info.type = tarfile.CHRTYPE
    archive = _tar(tmp_path / "a.tar", [(info, None)], mode="w")
    with pytest.raises(ArchiveError, match="device file"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,data,mode,reason", [
    ("../evil.txt", b"x", 0o644, "'..' component"),
    ("/abs-evil.txt", b"x", 0o644, "absolute path"),
    ("link", b"../../evil.txt", stat.S_IFLNK | 0o777, "points outside"),
    ("fifo", b"", stat.S_IFIFO | 0o644, "device file"),
])
def test_unsafe_zip_members_are_refused(tmp_path, name, data, mode, reason):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", "ok")
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, data)
    with pytest.raises(ArchiveError, match=reason):
        extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["a.zip"]


# --- catalog and fetch -----------------------------------------------------------------------------------

def test_real_catalog_is_well_formed():
    catalog = load_catalog()
    assert {"dci", "iiw", "sharegpt4v", "urban1k", "docci", "mscoco", "flickr30k", "imagenet",
            "dreamlip-cc3m"} <= set(catalog)
    for name, entry in catalog.items():
        assert entry["loader"] is None or callable(getattr(benchmarks, entry["loader"])), name
        for spec in entry["files"]:
            assert "sha256" in spec and "size" in spec, name
            assert spec["sha256"] is None or len(spec["sha256"]) == 64, name
            assert all(u.startswith(("https://", "http://")) for u in spec.get("urls") or [spec["url"]]), name


def test_fetch_downloads_extracts_tries_mirrors_and_is_idempotent(http_server, tmp_path):
    archive = _tar(tmp_path / "pack.tar.gz", [_file("inner/a.txt", b"a")])
    http_server.add("pack.tar.gz", archive.read_bytes())
    http_server.add("mirror2/plain.json", b"{}")
    catalog = {"demo": {"files": [
        {"url": http_server.url("pack.tar.gz"), "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
         "size": None, "extract_to": "demo/pack"},
        {"urls": [http_server.url("mirror1/plain.json"), http_server.url("mirror2/plain.json")], "sha256": None,
         "size": 2, "dest": "demo/plain.json"},
    ]}}
    root = tmp_path / "data"
    paths = fetch("demo", root, catalog, backoff=0)
    assert paths == [root / "demo" / "pack", root / "demo" / "plain.json"]
    assert (root / "demo" / "pack" / "inner" / "a.txt").read_text() == "a"
    n = len(http_server.requests)
    fetch("demo", root, catalog, backoff=0)
    assert len(http_server.requests) == n  # everything present: no network
    with pytest.raises(KeyError, match="not in the catalog"):
        fetch("nope", root, catalog)
