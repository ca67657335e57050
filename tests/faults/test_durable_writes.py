"""Fault 10: power loss. A rename is atomic, but without fsync a power cut can still leave the new name pointing at
an empty or partial file (the data was never flushed) or lose the rename itself (the folder was never flushed).
Every atomic write therefore fsyncs the finished temp file (for a folder: every file and folder in it) before
``os.replace`` and the folder holding the output after it.

A power cut cannot be injected here, so the tests record the order of ``os.fsync`` and ``os.replace`` calls (each
fsync's path is read from ``/proc/self/fd``) for each kind of output: JSON, CSV + Markdown tables, checkpoints,
folders (an extracted archive; shards and the world use the same writer) and downloads.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from lotlip.data.download import download
from lotlip.data.extract import extract
from lotlip.io import write_csv_md, write_json, write_jsonl
from lotlip.model.checkpoint import save_checkpoint

pytest_plugins = ["tests.http_fixture"]  # http_server: a 127.0.0.1 file server


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    """``("fsync", path, size or None)`` and ``("replace", src, dst)`` in call order."""
    recorded: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        recorded.append(("fsync", path, os.path.getsize(path) if os.path.isfile(path) else None))
        real_fsync(fd)

    def replace(src, dst, *args, **kwargs) -> None:
        recorded.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return recorded


def _renamed(calls: list[tuple], dest: Path) -> tuple[int, str]:
    """(index, temp path) of the ``os.replace`` that published ``dest``."""
    found = [(i, c[1]) for i, c in enumerate(calls) if c[0] == "replace" and c[2] == str(dest.resolve())]
    assert len(found) == 1, f"{dest} was not renamed into place once: {calls}"
    return found[0]


def assert_durable_file(calls: list[tuple], dest: Path) -> None:
    """The temp file, complete, was fsynced before it was renamed onto ``dest``; the folder after."""
    i, tmp = _renamed(calls, dest)
    size = dest.stat().st_size
    assert ("fsync", tmp, size) in calls[:i], f"{dest}: temp file not fsynced (whole) before the rename: {calls}"
    assert ("fsync", str(dest.parent.resolve()), None) in calls[i + 1:], \
        f"{dest}: its folder was not fsynced after the rename: {calls}"


def assert_durable_folder(calls: list[tuple], dest: Path) -> None:
    """Every file and folder of the temp folder was fsynced before it was renamed onto ``dest``; the parent
    folder after."""
    i, tmp = _renamed(calls, dest)
    synced = {c[1] for c in calls[:i] if c[0] == "fsync"}
    inside = [p for p in dest.rglob("*") if not p.is_symlink()]
    assert inside, dest
    in_temp = {str(p): os.path.normpath(os.path.join(tmp, p.relative_to(dest))) for p in [dest, *inside]}
    missing = [p for p, there in in_temp.items() if there not in synced]
    assert missing == [], f"not fsynced before the rename: {missing}"
    assert ("fsync", str(dest.parent.resolve()), None) in calls[i + 1:], \
        f"{dest}: its parent folder was not fsynced after the rename: {calls}"


def test_json_and_jsonl_are_fsynced_with_their_folder(calls, tmp_path):
    write_json(tmp_path / "out" / "eval.json", {"i2t_r1": 1.0})
    write_jsonl(tmp_path / "out" / "captions.jsonl", [{"key": "a"}, {"key": "b"}])
    assert_durable_file(calls, tmp_path / "out" / "eval.json")
    assert_durable_file(calls, tmp_path / "out" / "captions.jsonl")


def test_csv_table_and_its_markdown_are_fsynced(calls, tmp_path):
    write_csv_md(pd.DataFrame({"run": ["a", "b"], "r1": [1.0, 2.0]}), tmp_path / "table.csv")
    assert_durable_file(calls, tmp_path / "table.csv")
    assert_durable_file(calls, tmp_path / "table.md")


def test_checkpoints_are_fsynced_with_their_folder(calls, tmp_path):
    save_checkpoint({"state_dict": {"w": torch.ones(3)}, "step": 2}, tmp_path / "run" / "last.pt")
    assert_durable_file(calls, tmp_path / "run" / "last.pt")


def test_folder_outputs_are_fsynced_file_by_file(calls, tmp_path):
    archive = tmp_path / "pack.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("a.txt", b"a"), ("sub/b.txt", b"bb")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    extract(archive, tmp_path / "data" / "pack")
    assert_durable_folder(calls, tmp_path / "data" / "pack")


def test_downloads_are_fsynced_before_the_part_file_is_renamed(calls, http_server, tmp_path):
    url = http_server.add("model.pt", b"x" * 100_000)
    download(url, tmp_path / "models" / "model.pt", retries=0)
    assert_durable_file(calls, tmp_path / "models" / "model.pt")
