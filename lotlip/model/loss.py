"""Multi-text contrastive loss (paper Sec. 3.3; released loss semantics) and the Long-CLIP baseline loss.

Each image has T text features (short caption [CLS]; each long text's [CLS] and its K corners). Every text
feature contributes a symmetric InfoNCE term against the batch's image features; with unit weights the loss
is the mean of open_clip's ``ClipLoss`` over the T features. ``LongClipLoss`` is the peer recipe of Table 2
("LiT + Long-CLIP recipe").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss


class MultiTextClipLoss(torch.nn.Module):
    """Weighted mean over text features of open_clip's ``ClipLoss``.

    Args:
        short_weight: weight of feature 0 (the raw/short caption).
        long_weight: weight of every other feature (long-text [CLS] and corners).
        short_share: if set, the raw caption's share of the total weight, whatever the number of features
            (overrides ``short_weight``; 1/T is the unweighted mean).
    """

    def __init__(self, short_weight: float = 1.0, long_weight: float = 1.0, short_share: float | None = None,
                 **clip_loss_kwargs):
        super().__init__()
        self.clip_loss = ClipLoss(**clip_loss_kwargs)
        self.short_weight = short_weight
        self.long_weight = long_weight
        self.short_share = short_share

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """image_features [B, D], text_features [B, T, D] (both L2-normalised) -> named loss terms."""
        n_text = text_features.shape[1]
        short_weight = self.short_weight
        if self.short_share is not None and n_text > 1:
            if self.short_share >= 1.0:
                short_weight, long_weight = 1.0, 0.0
            else:
                short_weight, long_weight = self.short_share * (n_text - 1) / (1.0 - self.short_share), 1.0
        else:
            long_weight = self.long_weight
        weights = [short_weight] + [long_weight] * (n_text - 1)
        terms = [self.clip_loss(image_features, text_features[:, t], logit_scale) for t in range(n_text)]
        short = terms[0] * weights[0]
        long = sum((terms[t] * weights[t] for t in range(1, n_text)), torch.zeros_like(short))
        total = (short + long) / sum(weights)
        return {"loss": total, "short_loss": terms[0].detach(),
                "long_loss": (sum(terms[1:]) / (n_text - 1)).detach() if n_text > 1 else torch.zeros(())}


def pca_reconstruct(features: torch.Tensor, n_components: int = 32) -> torch.Tensor:
    """Features [B, D] rebuilt from their top ``n_components`` principal components over the batch.

    Long-CLIP's primary-component extraction (ECCV'24, Sec. 3.2): centre on the batch mean, project on the top
    right-singular vectors, add the mean back. The basis is computed per call by SVD without gradient (SVD's
    backward is unstable for the repeated zero singular values a centred batch always has); gradients flow
    through the projection. Not re-normalised. Exact when the centred features have rank <= ``n_components``.
    """
    mean = features.mean(0, keepdim=True)
    centred = features - mean
    with torch.no_grad():
        wide = centred if centred.dtype == torch.float64 else centred.float()  # SVD in >= fp32 under autocast
        _, _, vh = torch.linalg.svd(wide, full_matrices=False)
        basis = vh[:n_components].to(features.dtype)  # [k, D]
    return mean + (centred @ basis.T) @ basis


class SmoothedClipLoss(ClipLoss):
    """open_clip's symmetric ``ClipLoss`` (its logits and labels) with label-smoothed cross-entropy."""

    def __init__(self, label_smoothing: float = 0.1, **clip_loss_kwargs):
        super().__init__(**clip_loss_kwargs)
        self.label_smoothing = label_smoothing

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        """Mean of the image->text and text->image smoothed CE losses."""
        per_image, per_text = self.get_logits(image_features, text_features, logit_scale)
        labels = self.get_ground_truth(image_features.device, per_image.shape[0])
        ce = [F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing) for logits in (per_image, per_text)]
        return (ce[0] + ce[1]) / 2


class LongClipLoss(torch.nn.Module):
    """Long-CLIP's fine-tuning loss (ECCV'24): primary-component matching with label smoothing.

    Feature 0 (the short caption) is matched against the image features rebuilt from their top ``pca_dim``
    principal components (re-normalised); every other feature (long texts, [CLS] only) against the full image
    features. As in Long-CLIP the short and long terms weigh 1:1; the long term is the mean over long texts.
    The PCA runs over this process's batch, before features are gathered across ranks: Long-CLIP's training
    code does the same (PCA of the local image features, then ``all_gather``), so with DDP the short-text target
    depends on the per-GPU batch, as in the recipe being reproduced.
    """

    def __init__(self, pca_dim: int = 32, label_smoothing: float = 0.1, **clip_loss_kwargs):
        super().__init__()
        self.clip_loss = SmoothedClipLoss(label_smoothing, **clip_loss_kwargs)
        self.pca_dim = pca_dim

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """image_features [B, D], text_features [B, T, D] (both L2-normalised) -> named loss terms."""
        primary = F.normalize(pca_reconstruct(image_features, self.pca_dim), dim=-1)
        short = self.clip_loss(primary, text_features[:, 0], logit_scale)
        n_long = text_features.shape[1] - 1
        if n_long == 0:
            return {"loss": short, "short_loss": short.detach(), "long_loss": torch.zeros(())}
        long = sum(self.clip_loss(image_features, text_features[:, t], logit_scale) for t in range(1, n_long + 1))
        long = long / n_long
        return {"loss": (short + long) / 2, "short_loss": short.detach(), "long_loss": long.detach()}
