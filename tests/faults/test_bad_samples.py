"""Fault 4: bad training data (corrupt shard, undecodable image, sample without caption, empty / non-UTF-8 /
50x-too-long caption, and more) is a counted skip with one warning, or one clear error naming the sample with
``sampling.strict: true``; never a crash inside the data stream. Skip counts reach the run's log and the summary
stored in the checkpoint.

Complements ``tests/data/test_bad_samples.py`` (one mixed shard): here every bad input is its own case.
"""

from __future__ import annotations

import json
import logging
import struct
import tarfile
import zlib

import pytest
import torch
import webdataset as wds

from lotlip.cli import main
from lotlip.config import SamplingConfig, to_dict
from lotlip.data.loader import train_batches
from lotlip.data.validate import BadSampleError, SkipCounter
from lotlip.model import get_tokenizer
from lotlip.train import loop
from tests.data.test_bad_samples import _meta, _png
from tests.faults.conftest import tiny_run, train_args

MAX_CHARS = 4000  # sampling.max_caption_chars default: about 50x the median long caption (372 chars here)
FIFTY_X = "A red circle sits left of a blue square. " * (50 * 372 // 41)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG whose header claims side x side pixels (PIL refuses it as a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 16)) + \
        _chunk(b"IEND", b"")


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


# id -> (the bad sample's fields, the skip reason)
BAD = {
    "undecodable-image": ({"png": b"not a png", "json": _meta()}, "undecodable_image"),
    "truncated-image": ({"png": _png()[:60], "json": _meta()}, "undecodable_image"),
    "missing-image": ({"json": _meta()}, "missing_field"),
    "missing-caption": ({"png": _png()}, "missing_field"),
    "no-raw-caption": ({"png": _png(), "json": _json({"captions": {}})}, "missing_caption"),
    "invalid-json": ({"png": _png(), "json": b'{"raw": "a red'}, "missing_caption"),
    "json-not-an-object": ({"png": _png(), "json": b"[1, 2]"}, "missing_caption"),
    "empty-caption": ({"png": _png(), "json": _meta(raw="")}, "empty_caption"),
    "blank-caption": ({"png": _png(), "json": _meta(raw=" \n\t ")}, "empty_caption"),
    "caption-not-text": ({"png": _png(), "json": _json({"raw": 5})}, "empty_caption"),
    "non-utf8-caption": ({"png": _png(), "json": '{"raw": "café"}'.encode("latin-1")}, "bad_caption_encoding"),
    "utf16-caption": ({"png": _png(), "json": '{"raw": "a red circle"}'.encode("utf-16")}, "bad_caption_encoding"),
    "50x-long-raw-caption": ({"png": _png(), "json": _meta(raw=FIFTY_X)}, "caption_too_long"),
    "50x-long-long-caption": ({"png": _png(), "json": _meta(long=FIFTY_X)}, "caption_too_long"),
    "captions-not-a-mapping": ({"png": _png(), "json": _json({"raw": "a red circle", "captions": "oops"})},
                               "missing_caption"),
    "long-caption-not-text": ({"png": _png(), "json": _json({"raw": "a", "captions": {"llava": {"long": 5}}})},
                              "missing_caption"),
    "long-caption-null": ({"png": _png(), "json": _json({"raw": "a", "captions": {"llava": {"long": None}}})},
                          "missing_caption"),
    "short-caption-not-text": ({"png": _png(), "json": _json({"raw": "a", "captions": {"llava": {"short": [1],
                                                                                                "long": "b"}}})},
                               "missing_caption"),
    "decompression-bomb": ({"png": _bomb_png(), "json": _meta()}, "undecodable_image"),
}


def _shard(path, bad: dict | None = None, n_good: int = 8) -> str:
    with wds.TarWriter(str(path)) as sink:
        for i in range(n_good):
            sink.write({"__key__": f"ok{i}", "png": _png(), "json": _meta()})
        if bad is not None:
            sink.write({"__key__": "bad", **bad})
    return str(path)


def _batches(urls, strict=False, skips=None, n=2):
    """``n`` batches of 4 (the 8 good samples), or the error."""
    sampling = SamplingConfig(n_subcaptions=1, merged_num=1, strict=strict, max_caption_chars=MAX_CHARS)
    stream = train_batches(urls, sampling, get_tokenizer("lotlip-tiny"), lambda im: torch.zeros(3, 32, 32),
                           batch_size=4, seed=0, shuffle_buffer=0, skips=skips)
    return [next(stream) for _ in range(n)]


@pytest.mark.parametrize("case", BAD)
def test_bad_sample_is_a_counted_skip_with_one_warning(case, tmp_path, caplog):
    bad, reason = BAD[case]
    skips = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="lotlip.data.validate"):
        batches = _batches([_shard(tmp_path / "bad-000000.tar", bad)], skips=skips, n=3)  # into the 2nd epoch
    assert all(images.shape[0] == 4 for images, _ in batches)
    assert skips.counts == {reason: 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bad-000000.tar:bad" in warnings[0], warnings


@pytest.mark.parametrize("case", BAD)
def test_bad_sample_in_strict_mode_is_one_error_naming_it(case, tmp_path):
    bad, reason = BAD[case]
    with pytest.raises(BadSampleError) as err:
        _batches([_shard(tmp_path / "bad-000000.tar", bad)], strict=True, n=3)
    message = str(err.value)
    assert "bad-000000.tar:bad: " + reason in message and "\n" not in message


def _corrupt_shard(tmp_path, how: str) -> str:
    path = tmp_path / "corrupt-000000.tar"
    if how == "truncated":
        _shard(tmp_path / "whole.tar", n_good=6)
        data = (tmp_path / "whole.tar").read_bytes()
        path.write_bytes(data[: len(data) // 2 + 100])
    elif how == "junk":
        path.write_bytes(b"\x00garbage" * 1000)
    elif how == "empty":
        path.write_bytes(b"")
    return str(path)  # "missing": never written


SHARD_FAULTS = ["truncated", "junk", "empty", "missing"]


@pytest.mark.parametrize("how", SHARD_FAULTS)
def test_corrupt_shard_is_a_counted_skip(how, tmp_path):
    skips = SkipCounter()
    urls = [_corrupt_shard(tmp_path, how), _shard(tmp_path / "good-000000.tar")]
    batches = _batches(urls, skips=skips)
    assert len(batches) == 2 and skips.counts["unreadable_shard_data"] >= 1, skips.counts


@pytest.mark.parametrize("how", SHARD_FAULTS)
def test_corrupt_shard_in_strict_mode_is_one_error(how, tmp_path):
    with pytest.raises(BadSampleError, match="unreadable_shard_data"):
        _batches([_corrupt_shard(tmp_path, how), _shard(tmp_path / "good-000000.tar")], strict=True)


@pytest.fixture(scope="module")
def dirty_shard_dir(tmp_path_factory):
    """A shard folder: 24 good samples, one of every bad sample, and a truncated shard."""
    folder = tmp_path_factory.mktemp("dirty")
    _shard(folder / "train-000000.tar", n_good=24)
    with wds.TarWriter(str(folder / "train-000001.tar")) as sink:
        for name, (fields, _) in BAD.items():
            sink.write({"__key__": f"bad-{name}", **fields})
    whole = (folder / "train-000000.tar").read_bytes()
    (folder / "train-000002.tar").write_bytes(whole[: len(whole) // 2 + 100])
    sizes = {"train-000000.tar": 24, "train-000001.tar": len(BAD), "train-000002.tar": 24}
    (folder / "sizes.json").write_text(json.dumps(sizes))
    return folder


def test_training_run_logs_and_records_its_skips(tiny_cfg, dirty_shard_dir, tmp_path, caplog):
    """``lotlip train`` (the rule's command) on dirty shards: trains, warns with the counts, stores them."""
    run = tiny_run(tiny_cfg, steps=5, batch_size=8, checkpoint_every=10)  # 40 samples: a whole epoch
    with caplog.at_level(logging.INFO):
        rc = main(train_args(run, dirty_shard_dir, tmp_path / "run" / "model.pt"))
    assert rc == 0
    summary = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["meta"]["summary"]
    counts = summary["skipped_samples"]  # the result file
    assert set(counts) >= {reason for _, reason in BAD.values()}, counts
    assert sum(counts.values()) >= len(BAD) + 1  # + the sample cut by the truncation
    logged = [r.getMessage() for r in caplog.records if r.name == loop.log.name and r.levelno == logging.WARNING]
    assert any("skipped bad samples" in m and "caption_too_long" in m for m in logged), logged  # the run's log


def test_shard_cut_at_a_sample_boundary_is_a_counted_skip(tiny_cfg, tmp_path, caplog):
    """A valid but shorter tar: the samples it lacks against sizes.json are counted (``truncated_shard``)."""
    folder = tmp_path / "shards"
    folder.mkdir()
    _shard(folder / "train-000000.tar", n_good=24)
    with tarfile.open(folder / "train-000000.tar") as tar:
        cut = tar.getmembers()[24].offset  # where sample 12 of 24 starts
    data = (folder / "train-000000.tar").read_bytes()
    (folder / "train-000000.tar").write_bytes(data[:cut])
    (folder / "sizes.json").write_text(json.dumps({"train-000000.tar": 24}))  # what write_shards recorded
    run = tiny_run(tiny_cfg, steps=2, batch_size=8, checkpoint_every=10)  # 16 samples: past the 12 left
    with caplog.at_level(logging.WARNING):
        summary = loop.train(run, folder, tmp_path / "run" / "model.pt")
    assert summary["skipped_samples"].get("truncated_shard", 0) >= 12, summary  # the 12 lost samples
    assert any("train-000000.tar" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_strict_training_run_stops_with_one_line_naming_the_sample(tiny_cfg, dirty_shard_dir, tmp_path, capsys):
    run = tiny_run(tiny_cfg, steps=5, batch_size=8, checkpoint_every=10)
    run = type(run)(**{**run.__dict__, "sampling": type(run.sampling)(**{**to_dict(run.sampling), "strict": True})})
    rc = main(train_args(run, dirty_shard_dir, tmp_path / "run" / "model.pt"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("lotlip train: error: ") and "train-0000" in err[0], err
    assert not (tmp_path / "run" / "model.pt").exists()
