"""Bad training data: counted skips by default, one clear error in strict mode, never a crash deep inside."""

import io
import json

import pytest
import torch
import webdataset as wds
from PIL import Image

from lotlip.config import SamplingConfig
from lotlip.data.loader import train_batches
from lotlip.data.validate import BadSampleError, SkipCounter
from lotlip.model import get_tokenizer


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _meta(raw: str = "a red circle", long: str = "A red circle. A blue square.") -> bytes:
    return json.dumps({"raw": raw, "captions": {"llava": {"short": "x", "long": long}}}).encode()


@pytest.fixture()
def dirty_shards(tmp_path):
    good = tmp_path / "good-000000.tar"
    with wds.TarWriter(str(good)) as sink:
        for i in range(8):
            sink.write({"__key__": f"ok{i}", "png": _png(), "json": _meta()})
        sink.write({"__key__": "badimg", "png": b"not a png", "json": _meta()})
        sink.write({"__key__": "empty", "png": _png(), "json": _meta(raw="  ")})
        sink.write({"__key__": "latin1", "png": _png(), "json": "caf\xe9".encode("latin-1")})
        sink.write({"__key__": "huge", "png": _png(), "json": _meta(long="word " * 2000)})
        sink.write({"__key__": "nocap", "png": _png()})
    truncated = tmp_path / "cut-000000.tar"
    truncated.write_bytes(good.read_bytes()[:3000])
    return [str(good), str(truncated)]


def _batches(urls, strict=False, skips=None):
    sampling = SamplingConfig(n_subcaptions=1, merged_num=1, strict=strict, max_caption_chars=2000)
    tok = get_tokenizer("lotlip-tiny")
    return train_batches(urls, sampling, tok, lambda im: torch.zeros(3, 32, 32), batch_size=4, seed=0,
                         shuffle_buffer=0, skips=skips)


def test_bad_samples_are_counted_skips(dirty_shards):
    skips = SkipCounter()
    batches = _batches(dirty_shards, skips=skips)
    for _ in range(4):  # two epochs of good samples
        images, tokens = next(batches)
        assert images.shape == (4, 3, 32, 32) and tokens.shape[:2] == (4, 2)
    for reason in ("undecodable_image", "empty_caption", "bad_caption_encoding", "caption_too_long",
                   "missing_field"):
        assert skips.counts[reason] >= 1, reason
    assert skips.counts["unreadable_shard_data"] >= 1  # the truncated shard


def test_strict_mode_names_the_bad_sample(dirty_shards):
    batches = _batches(dirty_shards[:1], strict=True)
    next(batches), next(batches)  # the first 8 samples are fine
    with pytest.raises(BadSampleError, match=r"good-000000.tar:badimg: undecodable_image"):
        next(batches)


def test_only_bad_samples_is_a_clear_error(tmp_path):
    path = tmp_path / "bad-000000.tar"
    with wds.TarWriter(str(path)) as sink:
        sink.write({"__key__": "x", "png": b"junk", "json": _meta()})
    with pytest.raises(ValueError, match="no usable samples"):
        next(_batches([str(path)]))
