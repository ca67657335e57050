"""The training step shared by the trainer and bench/: precision, gradient accumulation, clipping."""

from __future__ import annotations

import pytest
import torch

from lotlip.config import ConfigError, load_config
from lotlip.model import MultiTextClipLoss, create_model, get_tokenizer
from lotlip.model.tokenizer import trim_padding
from lotlip.train.step import TrainStep, autocast, features

WORDS = ["red", "blue", "green", "circle", "square", "left", "right", "small", "large", "top", "bottom", "star"]


def _batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 32, 32, generator=g)
    texts = [" ".join(WORDS[j] for j in torch.randint(len(WORDS), (4 + k % 5,), generator=g).tolist())
             for k in range(n * 3)]
    tok = get_tokenizer("lotlip-tiny", num_corner_tokens=2)
    return images, trim_padding(tok(texts), tok.pad_id).view(n, 3, -1)


def _step(precision: str = "fp32", accum_steps: int = 1, clip: float | None = None, lr: float = 0.0) -> TrainStep:
    torch.manual_seed(0)
    model = create_model("lotlip-tiny", num_corner_tokens=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    return TrainStep(model, optimizer, MultiTextClipLoss(), torch.device("cpu"), precision=precision,
                     accum_steps=accum_steps, grad_clip_norm=clip)


def _grads(step: TrainStep) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in step.model.named_parameters() if p.grad is not None}


def test_bf16_step_on_cpu_trains():
    step = _step("bf16", lr=1e-3)
    before = {n: p.detach().clone() for n, p in step.model.named_parameters()}
    images, tokens = _batch()
    out = step(images, tokens)
    assert set(out) == {"loss", "short_loss", "long_loss", "grad_norm"} and 0 < out["loss"] < 10
    changed = [n for n, p in step.model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) > 10
    assert all(p.dtype == torch.float32 for p in step.model.parameters())  # autocast keeps fp32 master weights


def test_fp32_and_bf16_agree_within_tolerance():
    """bf16 autocast vs fp32: loss within 2 % and every tensor's gradient at cosine >= 0.95, norm within 15 %
    (bfloat16 keeps 8 mantissa bits: ~0.4 % per product, accumulated over 4 + 4 layers)."""
    images, tokens = _batch()
    ref, low = _step("fp32"), _step("bf16")
    loss_ref = ref.compute_gradients(images, tokens)["loss"].item()
    loss_low = low.compute_gradients(images, tokens)["loss"].item()
    assert loss_low == pytest.approx(loss_ref, rel=0.02)
    assert loss_low != loss_ref  # autocast really ran in bf16
    g_ref, g_low = _grads(ref), _grads(low)
    assert g_ref.keys() == g_low.keys()
    whole_ref = torch.cat([g.flatten() for g in g_ref.values()])
    whole_low = torch.cat([g.flatten() for g in g_low.values()])
    assert torch.nn.functional.cosine_similarity(whole_ref, whole_low, dim=0) > 0.99
    for name, g in g_ref.items():
        if g.norm() < 1e-6:
            continue
        cos = torch.nn.functional.cosine_similarity(g.flatten(), g_low[name].flatten(), dim=0)
        assert cos > 0.95, name
        assert g_low[name].norm().item() == pytest.approx(g.norm().item(), rel=0.15), name


def test_accumulation_gives_the_gradients_of_the_whole_batch():
    images, tokens = _batch(8)
    whole, accum = _step(accum_steps=1), _step(accum_steps=2)
    loss_whole = whole.compute_gradients(images, tokens)["loss"].item()
    loss_accum = accum.compute_gradients(images, tokens)["loss"].item()
    assert loss_accum == pytest.approx(loss_whole, rel=1e-5)
    g_whole, g_accum = _grads(whole), _grads(accum)
    assert g_whole.keys() == g_accum.keys() and "logit_scale" in g_whole
    for name, g in g_whole.items():
        torch.testing.assert_close(g_accum[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_accumulation_differs_from_independent_micro_batches():
    """The guard: two independent half-batch losses (what plain accumulation would do) give other gradients."""
    images, tokens = _batch(8)
    whole = _step()
    whole.compute_gradients(images, tokens)
    halves = _step()
    halves.optimizer.zero_grad()
    for part in (slice(0, 4), slice(4, 8)):
        feats = features(halves.model, images[part], tokens[part])
        halves.loss_fn(*feats, halves.model.logit_scale.exp())["loss"].backward()
    diff = max((_grads(halves)[n] - g).abs().max().item() for n, g in _grads(whole).items())
    assert diff > 1e-3


def test_clipping_bounds_the_gradient_norm():
    images, tokens = _batch()
    step = _step(clip=0.01, lr=1e-3)
    out = step(images, tokens)
    assert out["grad_norm"] > 0.01  # the norm before clipping is reported
    total = torch.cat([p.grad.flatten() for p in step.model.parameters() if p.grad is not None]).norm()
    assert total.item() == pytest.approx(0.01, rel=1e-3)


def test_amp_needs_cuda_and_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="amp.*CUDA"):
        _step("amp")
    with pytest.raises(ValueError, match="fp16"):
        autocast("fp16", "cpu")


def test_accumulation_must_divide_the_batch():
    images, tokens = _batch(6)
    with pytest.raises(ValueError, match="accum_steps: 4 does not divide the batch of 6"):
        _step(accum_steps=4).compute_gradients(images, tokens)


@pytest.mark.parametrize(("train", "message"), [
    ({"precision": "amp"}, "train.precision: 'amp' .* needs a CUDA device, not 'cpu'"),
    ({"precision": "fp16"}, "train.precision: 'fp16' is not one of fp32, bf16, amp"),
    ({"batch_size": 64, "accum_steps": 3}, "train.accum_steps: 3 does not divide train.batch_size 64"),
    ({"grad_clip_norm": -1.0}, "train.grad_clip_norm: -1.0 is below the minimum 0.0"),
])
def test_config_errors_name_the_key(train, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"train": train})


def test_experiment_precision_override_is_checked_against_the_device():
    cfg = load_config({"experiments": {"half": {"method": "lotlip", "precision": "bf16"}}})
    from lotlip.config import run_config

    assert run_config(cfg, "half").train.precision == "bf16"
    cfg = load_config({"experiments": {"half": {"method": "lotlip", "precision": "amp"}}})
    with pytest.raises(ConfigError, match="experiments.half -> train.precision: 'amp'"):
        run_config(cfg, "half")


def test_accumulation_must_divide_the_per_process_batch(tmp_path, monkeypatch):
    """A global batch the config accepts (4 % 4 == 0) is refused before anything is built when 2 ranks share it."""
    from lotlip.config import run_config
    from lotlip.train import distributed, loop

    cfg = load_config({"train": {"batch_size": 4, "accum_steps": 4}})
    monkeypatch.setattr(distributed, "current", lambda: distributed.DistInfo(0, 2, 0))
    monkeypatch.setattr(loop, "build_model", lambda *a: pytest.fail("model built before the batch check"))
    with pytest.raises(ValueError, match=r"train.accum_steps: 4 does not divide the per-process batch 2 "
                                         r"\(train.batch_size 4 over 2 processes\)"):
        loop.train(run_config(cfg, "lotlip"), tmp_path / "shards", tmp_path / "out" / "model.pt")
    assert not (tmp_path / "out" / "model.pt").exists()
