"""Multi-text contrastive loss (paper Sec. 3.3; released loss semantics).

Each image has T text features (short caption [CLS]; each long text's [CLS] and its K corners). Every text
feature contributes a symmetric InfoNCE term against the batch's image features; with unit weights the loss
is the mean of open_clip's ``ClipLoss`` over the T features.
"""

from __future__ import annotations

import torch
from open_clip.loss import ClipLoss


class MultiTextClipLoss(torch.nn.Module):
    """Weighted mean over text features of open_clip's ``ClipLoss``.

    Args:
        short_weight: weight of feature 0 (the raw/short caption).
        long_weight: weight of every other feature (long-text [CLS] and corners).
    """

    def __init__(self, short_weight: float = 1.0, long_weight: float = 1.0, **clip_loss_kwargs):
        super().__init__()
        self.clip_loss = ClipLoss(**clip_loss_kwargs)
        self.short_weight = short_weight
        self.long_weight = long_weight

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """image_features [B, D], text_features [B, T, D] (both L2-normalised) -> named loss terms."""
        n_text = text_features.shape[1]
        weights = [self.short_weight] + [self.long_weight] * (n_text - 1)
        terms = [self.clip_loss(image_features, text_features[:, t], logit_scale) for t in range(n_text)]
        short = terms[0] * weights[0]
        long = sum((terms[t] * weights[t] for t in range(1, n_text)), torch.zeros_like(short))
        total = (short + long) / sum(weights)
        return {"loss": total, "short_loss": terms[0].detach(),
                "long_loss": (sum(terms[1:]) / (n_text - 1)).detach() if n_text > 1 else torch.zeros(())}
