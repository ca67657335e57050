"""Short-text tasks: COCO-like retrieval with several captions per image, ImageNet-like zero-shot."""

from __future__ import annotations

import torch


def multi_caption_recall(image_feats: torch.Tensor, text_feats: torch.Tensor, text_to_image: torch.Tensor,
                         ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """I2T and T2I R@k (%) when image i owns every text t with ``text_to_image[t] == i``.

    I2T: an image is a hit if any of its captions is among its top-k texts; T2I: a caption is a hit if its
    image is among its top-k images (the COCO/Flickr protocol).
    """
    sims = image_feats @ text_feats.T  # [N_img, N_txt]
    out: dict[str, float] = {}
    for k in ks:
        top_texts = sims.topk(min(k, sims.shape[1]), dim=1).indices  # [N_img, k]
        i2t = (text_to_image[top_texts] == torch.arange(sims.shape[0])[:, None]).any(1).float().mean()
        top_images = sims.T.topk(min(k, sims.shape[0]), dim=1).indices  # [N_txt, k]
        t2i = (top_images == text_to_image[:, None]).any(1).float().mean()
        out[f"i2t_r{k}"] = round(100.0 * i2t.item(), 2)
        out[f"t2i_r{k}"] = round(100.0 * t2i.item(), 2)
    return out


def zero_shot_accuracy(image_feats: torch.Tensor, class_feats: torch.Tensor, labels: torch.Tensor,
                       ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy (%) of nearest class embedding; ``class_feats`` [C, D] normalised."""
    logits = image_feats @ class_feats.T
    out = {}
    for k in ks:
        top = logits.topk(min(k, logits.shape[1]), dim=1).indices
        out[f"top{k}"] = round(100.0 * (top == labels[:, None]).any(1).float().mean().item(), 2)
    return out
