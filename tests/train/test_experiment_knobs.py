"""Experiment overrides reach training: raw-caption share, data subset, captioners, token limit, text init."""

import random

import open_clip
import pytest
import torch

from lotlip.config import ExperimentConfig, load_config, run_config
from lotlip.data.loader import train_batches
from lotlip.data.shards import ShardError, first_keys, shard_urls
from lotlip.data.subcaptions import sample_texts
from lotlip.model import MultiTextClipLoss, create_model
from lotlip.model.checkpoint import load_text_tower, save_model
from lotlip.train.loop import build_model, loss_for


def _features(b=6, t=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.normalize(torch.randn(b, d, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(b, t, d, generator=g), dim=-1)
    return img, txt


def test_short_share_sets_the_raw_captions_weight():
    img, txt = _features()
    scale = torch.tensor(10.0)
    plain = MultiTextClipLoss()
    terms = [plain.clip_loss(img, txt[:, i], scale) for i in range(4)]
    half = MultiTextClipLoss(short_share=0.5)(img, txt, scale)["loss"]
    assert half.item() == pytest.approx((0.5 * terms[0] + 0.5 * sum(terms[1:]) / 3).item(), rel=1e-5)
    equal = MultiTextClipLoss(short_share=0.25)(img, txt, scale)["loss"]
    assert equal.item() == pytest.approx(plain(img, txt, scale)["loss"].item(), rel=1e-5)  # 1/T: unweighted mean
    only_raw = MultiTextClipLoss(short_share=1.0)(img, txt, scale)["loss"]
    assert only_raw.item() == pytest.approx(terms[0].item(), rel=1e-5)
    exp = ExperimentConfig(short_share=0.5)
    assert loss_for(exp).short_share == 0.5


def test_train_samples_keeps_a_fixed_subset(tiny_world, tiny_cfg):
    _, _, shards = tiny_world
    urls = shard_urls(shards)
    keep = first_keys(urls, 20)
    assert len(keep) == 20 and keep == first_keys(list(reversed(urls)), 20)
    with pytest.raises(ShardError, match="train_samples 1000 exceeds the 96 samples"):
        first_keys(urls, 1000)
    tok = build_model("lotlip-tiny", ExperimentConfig())[1]
    transform = open_clip.image_transform(32, is_train=False)
    seen = []
    batches = train_batches(urls, tiny_cfg.sampling, tok, transform, 10, seed=0, shuffle_buffer=1, keep=keep)
    for _ in range(4):  # two epochs of the 20 kept samples
        images, tokens = next(batches)
        assert images.shape[0] == 10
        seen.append(tokens)
    assert not torch.equal(seen[0], seen[1])


def test_captioners_restrict_the_sentence_pool():
    captions = {"llava": {"short": "Shapes.", "long": "A red circle. A blue square."},
                "sharegpt4v": {"short": "A lawn.", "long": "The grass is green. Cats sleep. Dogs run."}}
    rng = random.Random(0)
    texts = sample_texts("raw", captions, 5, 1, "across", rng, ["sharegpt4v"])
    assert texts[0] == "raw" and all(t in ("A lawn", "The grass is green", "Cats sleep") for t in texts[1:])


def test_context_length_override_builds_a_longer_text_tower():
    model, tok = build_model("lotlip-tiny", ExperimentConfig(context_length=128))
    assert model.context_length == 128 and tok(["a b c"]).shape[1] == 128


def test_text_init_copies_the_text_tower_and_keeps_new_rows(tmp_path):
    torch.manual_seed(0)
    source = create_model("lotlip-tiny", num_corner_tokens=0)
    save_model(tmp_path / "short.pt", source, "lotlip-tiny", True, {"seed": 0})
    target = create_model("lotlip-tiny", num_corner_tokens=2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    load_text_tower(target, tmp_path / "short.pt")
    src, dst = source.state_dict(), target.state_dict()
    for key, value in src.items():
        if key.startswith("text.") and value.shape == dst[key].shape:
            assert torch.equal(dst[key], value), key
    grown = [k for k in src if k.startswith("text.") and src[k].shape != dst[k].shape]
    assert grown, "the corner tokens grow the embedding table"
    for key in grown:
        n = src[key].shape[0]
        assert torch.equal(dst[key][:n], src[key]) and torch.equal(dst[key][n:], before[key][n:])
    assert torch.equal(dst["visual.conv1.weight"], before["visual.conv1.weight"])  # image tower untouched
    longer = create_model("lotlip-tiny", num_corner_tokens=0, context_length=128)
    load_text_tower(longer, tmp_path / "short.pt")  # a longer token limit keeps the trained positions
    assert torch.equal(longer.state_dict()["text.positional_embedding"][:77], src["text.positional_embedding"])
    source.text.ln_final.weight = torch.nn.Parameter(torch.ones(64))
    save_model(tmp_path / "narrow.pt", source, "lotlip-tiny", True, {"seed": 0})
    with pytest.raises(ValueError, match=r"text_init .*narrow.pt: text tower does not match the model: "
                                         r"text.ln_final.weight: checkpoint \(64,\) vs model \(128,\)"):
        load_text_tower(target, tmp_path / "narrow.pt")


def test_text_init_run_needs_its_checkpoint(tiny_world, tmp_path):
    from lotlip.train.loop import train

    cfg = load_config({"train": {"steps": 1, "batch_size": 8, "threads": 1},
                       "experiments": {"short": {"method": "short"}, "warm": {"text_init": "short"}}})
    with pytest.raises(ValueError, match="experiment.text_init is 'short' but no checkpoint was given"):
        train(run_config(cfg, "warm"), tiny_world[2], tmp_path / "warm" / "model.pt")
