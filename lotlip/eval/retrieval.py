"""Long-text image-text retrieval (one text per image), the released protocol: R@1 both directions."""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch
from PIL import Image

from lotlip.data.subcaptions import clean_caption
from lotlip.io import read_jsonl
from lotlip.model.factory import LoTLIP
from lotlip.model.tokenizer import CornerTokenizer, trim_padding


def recall_at_k(image_feats: torch.Tensor, text_feats: torch.Tensor, k: int = 1,
                block: int = 4096) -> tuple[float, float]:
    """(I2T, T2I) R@k in percent for paired features (row i of each is a pair), blocked over rows."""
    n = image_feats.shape[0]
    if text_feats.shape[0] != n:
        raise ValueError(f"recall_at_k: {n} images but {text_feats.shape[0]} texts; one text per image expected")
    target = torch.arange(n)
    i2t_hits = t2i_hits = 0
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        topk_t = (image_feats[rows] @ text_feats.T).topk(k, dim=1).indices  # [b, k]
        topk_i = (text_feats[rows] @ image_feats.T).topk(k, dim=1).indices
        i2t_hits += (topk_t == target[rows, None]).any(1).sum().item()
        t2i_hits += (topk_i == target[rows, None]).any(1).sum().item()
    return 100.0 * i2t_hits / n, 100.0 * t2i_hits / n


@torch.no_grad()
def encode_benchmark(model: LoTLIP, tokenizer: CornerTokenizer, bench_dir: str | Path,
                     batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised (image, text) features of a long-text benchmark folder (``texts.jsonl`` + images/)."""
    bench_dir = Path(bench_dir)
    records = read_jsonl(bench_dir / "texts.jsonl")
    if not records:
        raise ValueError(f"{bench_dir / 'texts.jsonl'}: no texts")
    transform = open_clip.image_transform(model.visual.image_size[0], is_train=False)
    device = next(model.parameters()).device
    image_feats, text_feats = [], []
    for start in range(0, len(records), batch_size):
        chunk = records[start: start + batch_size]
        images = torch.stack([transform(Image.open(bench_dir / "images" / f"{r['key']}.png").convert("RGB"))
                              for r in chunk])
        tokens = trim_padding(tokenizer([clean_caption(r["text"]) for r in chunk]))
        image_feats.append(model.encode_image(images.to(device), normalize=True).cpu())
        text_feats.append(model.encode_text(tokens.to(device), normalize=True).cpu())
    return torch.cat(image_feats), torch.cat(text_feats)


def evaluate_long_retrieval(model: LoTLIP, tokenizer: CornerTokenizer, bench_dir: str | Path,
                            batch_size: int = 256) -> dict:
    """I2T / T2I R@1 (%) and the set size."""
    images, texts = encode_benchmark(model, tokenizer, bench_dir, batch_size)
    i2t, t2i = recall_at_k(images, texts, k=1)
    return {"i2t_r1": round(i2t, 2), "t2i_r1": round(t2i, 2), "n_images": images.shape[0]}
