"""One training step, shared by the trainer and ``bench/``: forward -> loss dict -> backward -> clip -> step.

Precision (``train.precision``): ``fp32``; ``bf16`` (autocast to bfloat16 on CPU or CUDA, no scaler); ``amp``
(fp16 autocast + ``GradScaler``, CUDA only: the release's default). The loss is computed inside autocast, as the
release does.

Gradient accumulation (``train.accum_steps``) keeps the contrastive batch whole, as open_clip's ``--accum-freq``:
the features of every micro-batch are computed first without gradient, then each micro-batch is recomputed with
gradient and the loss of the *whole* batch (its fresh features spliced into the cached ones) is back-propagated.
The per-sample feature gradients of the summed passes are exactly those of one pass over the whole batch.
open_clip lets the logit scale collect a gradient in every pass (``accum_steps`` times its true gradient); here
only the first pass sees it with gradient, so ``accum_steps: 2`` gives the gradients of one batch of twice the
micro-batch size, the logit scale included.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lotlip.model.factory import LoTLIP

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "amp": torch.float16}


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"train.precision: {precision!r} is not one of fp32, bf16, amp")
    device = torch.device(device)
    if precision == "amp" and device.type != "cuda":
        raise ValueError(f"train.precision: 'amp' needs a CUDA device, not {device}; use bf16 or fp32")
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def make_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler | None:
    """A ``GradScaler`` for ``amp`` (fp16 gradients underflow without one); ``None`` for fp32 and bf16."""
    return torch.amp.GradScaler(torch.device(device).type) if precision == "amp" else None


def text_features(model: LoTLIP, tokens: torch.Tensor) -> torch.Tensor:
    """tokens [B, 1+N, L] -> normalised features [B, 1 + N*(1+K), D].

    The raw caption contributes its [CLS] feature; each long text its [CLS] and K corner features.
    """
    b, t, length = tokens.shape
    feats = model.encode_text_all(tokens.reshape(b * t, length), normalize=True)  # [B*T, 1+K, D]
    feats = feats.view(b, t, feats.shape[1], -1)
    short = feats[:, 0, :1]  # [B, 1, D]
    longs = feats[:, 1:].reshape(b, -1, feats.shape[-1])  # [B, N*(1+K), D]
    return torch.cat([short, longs], dim=1)


def features(model: LoTLIP, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised image features [B, D] and text features [B, T, D] of one batch."""
    return model.encode_image(images, normalize=True), text_features(model, tokens)


@dataclass
class TrainStep:
    """The training step of one run; call it with a batch, get the step's loss terms as floats.

    ``sync_gradients`` runs after the backward passes and before clipping (e.g. the all-reduce of
    :func:`lotlip.train.distributed.average_gradients`).
    """

    model: LoTLIP
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[..., dict[str, torch.Tensor]]
    device: torch.device
    precision: str = "fp32"
    accum_steps: int = 1
    grad_clip_norm: float | None = None
    sync_gradients: Callable[[torch.nn.Module], None] | None = None

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        autocast(self.precision, self.device)  # validates precision x device
        self.scaler = make_scaler(self.precision, self.device)

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def compute_gradients(self, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Zero the gradients and fill them for this batch (no optimizer step); returns the loss terms."""
        model, n = self.model, self.accum_steps
        if images.shape[0] % n:
            raise ValueError(f"train.accum_steps: {n} does not divide the batch of {images.shape[0]}")
        self.optimizer.zero_grad(set_to_none=True)
        if n == 1:
            with autocast(self.precision, self.device):
                losses = self.loss_fn(*features(model, images, tokens), model.logit_scale.exp())
            self._backward(losses["loss"])
            return losses
        micro_images, micro_tokens = images.chunk(n), tokens.chunk(n)
        with torch.no_grad(), autocast(self.precision, self.device):
            cached = [features(model, i, t) for i, t in zip(micro_images, micro_tokens, strict=True)]
        losses = {}
        for j in range(n):
            with autocast(self.precision, self.device):
                fresh = features(model, micro_images[j], micro_tokens[j])
                image_all = torch.cat([fresh[0] if k == j else c[0] for k, c in enumerate(cached)])
                text_all = torch.cat([fresh[1] if k == j else c[1] for k, c in enumerate(cached)])
                scale = model.logit_scale.exp() if j == 0 else model.logit_scale.exp().detach()
                step_losses = self.loss_fn(image_all, text_all, scale)
            self._backward(step_losses["loss"])
            losses = losses or step_losses  # every pass computes the same whole-batch loss
        return losses

    def __call__(self, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, float]:
        """One optimizer step on the batch (the learning rate is the optimizer's, set by the scheduler)."""
        losses = self.compute_gradients(images.to(self.device), tokens.to(self.device))
        loss = losses["loss"].item()
        if not math.isfinite(loss) and self.scaler is None:  # amp: the scaler skips overflowed steps
            raise FloatingPointError(f"loss is {loss}")
        if self.sync_gradients is not None:
            self.sync_gradients(self.model)
        grad_norm = float("nan")
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip_norm is not None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip_norm))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skipped when the fp16 gradients overflowed
            self.scaler.update()
        else:
            self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(100))
        return {"loss": loss, "short_loss": float(losses["short_loss"]), "long_loss": float(losses["long_loss"]),
                "grad_norm": grad_norm}

    def state_dict(self) -> dict:
        """The scaler's state (empty without one): saved in ``last.pt`` so a resumed amp run is exact."""
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output."""
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
