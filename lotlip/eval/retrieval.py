"""Long-text image-text retrieval (one text per image), the released protocol: R@1 both directions.

Works for any CLIP-like model (``encode_image`` / ``encode_text`` with ``normalize``, ``visual.image_size``):
ours, the released LoTLIP, OpenAI CLIP and Long-CLIP through open_clip. A benchmark record names its image by
field ``image`` (absolute, or relative to the benchmark folder: imported real sets) or else by its ``key``
(``images/<key>.png``: generated sets).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image
from tqdm import tqdm

from lotlip.data.subcaptions import clean_caption
from lotlip.io import read_jsonl
from lotlip.model.tokenizer import trim_padding
from lotlip.model.transform import image_transform


class TextTokenizer(Protocol):
    """What evaluation needs of a tokenizer: texts -> ids [N, context_length], and the padding id.

    All-padding columns are trimmed before encoding unless the tokenizer sets ``trim_padding = False`` (open_clip's
    CLIP adds every position of its table, so it needs full-length inputs).
    """

    pad_id: int

    def __call__(self, texts: list[str]) -> torch.Tensor: ...


def image_paths(bench_dir: Path, records: list[dict]) -> list[Path]:
    """Each record's image file; a missing one raises naming ``texts.jsonl``, the record and the path."""
    paths = []
    for i, record in enumerate(records, 1):
        where = f"{bench_dir / 'texts.jsonl'}: record {i}"
        if record.get("image"):
            path = bench_dir / record["image"]
        elif "key" in record:
            path = bench_dir / "images" / f"{record['key']}.png"
        else:
            raise ValueError(f"{where}: field 'image' (or 'key') missing")
        if not path.is_file():
            raise FileNotFoundError(f"{where}: image {path} not found")
        paths.append(path)
    return paths


SIMILARITY_BLOCK_BYTES = 256 * 2**20  # similarity rows held at once: 256 MiB (100k columns: 671 rows)


def block_rows(n_columns: int, block: int = 4096, max_block_bytes: int = SIMILARITY_BLOCK_BYTES,
               element_size: int = 4) -> int:
    """Rows of an ``[rows, n_columns]`` similarity block: at most ``block`` and at most ``max_block_bytes``."""
    return max(1, min(block, max_block_bytes // max(1, n_columns * element_size)))


def recall_at_k(image_feats: torch.Tensor, text_feats: torch.Tensor, k: int = 1, block: int = 4096,
                max_block_bytes: int = SIMILARITY_BLOCK_BYTES) -> tuple[float, float]:
    """(I2T, T2I) R@k in percent for paired features (row i of each is a pair), blocked over rows.

    The N x N similarity matrix never exists: each direction takes ``[rows, N]`` blocks (at most ``block`` rows and
    ``max_block_bytes``) and keeps only their top-k indices, so memory is O(N x rows) and 100k x 100k fits in a
    few hundred MB. Each row's scores and its top-k are computed exactly as from the full matrix, ties included
    (``topk`` sees the same row), so the block size changes nothing beyond the float rounding a matrix product
    may differ by between block shapes.
    """
    n = image_feats.shape[0]
    if text_feats.shape[0] != n:
        raise ValueError(f"recall_at_k: {n} images but {text_feats.shape[0]} texts; one text per image expected")
    rows_per_block = block_rows(n, block, max_block_bytes, image_feats.element_size())
    # one reused block buffer: a fresh multi-MB tensor per block costs page faults (about 1.7x the time)
    buf = torch.empty(min(rows_per_block, n), n, dtype=torch.result_type(image_feats, text_feats),
                      device=image_feats.device)
    target = torch.arange(n, device=image_feats.device)
    i2t_hits = t2i_hits = 0
    with torch.no_grad():
        for start in range(0, n, rows_per_block):
            rows = slice(start, min(start + rows_per_block, n))
            sim = buf[: rows.stop - start]
            topk_t = torch.matmul(image_feats[rows], text_feats.T, out=sim).topk(k, dim=1).indices  # [b, k]
            i2t_hits += (topk_t == target[rows, None]).any(1).sum().item()
            topk_i = torch.matmul(text_feats[rows], image_feats.T, out=sim).topk(k, dim=1).indices
            t2i_hits += (topk_i == target[rows, None]).any(1).sum().item()
    return 100.0 * i2t_hits / n, 100.0 * t2i_hits / n


def _open_rgb(path: Path) -> Image.Image:
    """The decoded RGB image; one that does not decode is a ``ValueError`` naming it (never skipped)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        why = str(exc).replace(f"'{path}'", "").strip(" :") or type(exc).__name__
        raise ValueError(f"{os.path.normpath(path)}: image does not decode ({why})") from None


@torch.no_grad()
def encode_images(model: torch.nn.Module, paths: list[Path], batch_size: int = 256) -> torch.Tensor:
    """L2-normalised image features [N, D]."""
    transform = image_transform(model, is_train=False)
    device = next(model.parameters()).device
    feats = []
    for start in tqdm(range(0, len(paths), batch_size), desc="images", unit="batch", mininterval=2.0):
        images = torch.stack([transform(_open_rgb(p)) for p in paths[start: start + batch_size]])
        feats.append(model.encode_image(images.to(device), normalize=True).cpu())
    return torch.cat(feats)


@torch.no_grad()
def encode_texts(model: torch.nn.Module, tokenizer: TextTokenizer, texts: list[str],
                 batch_size: int = 256) -> torch.Tensor:
    """L2-normalised [CLS] text features [N, D] (texts truncated to the context length)."""
    device = next(model.parameters()).device
    feats = []
    for start in tqdm(range(0, len(texts), batch_size), desc="texts", unit="batch", mininterval=2.0):
        tokens = tokenizer(texts[start: start + batch_size])
        if getattr(tokenizer, "trim_padding", True):
            tokens = trim_padding(tokens, tokenizer.pad_id)
        feats.append(model.encode_text(tokens.to(device), normalize=True).cpu())
    return torch.cat(feats)


def evaluate_long_retrieval(model: torch.nn.Module, tokenizer: TextTokenizer, bench_dir: str | Path,
                            batch_size: int = 256) -> dict:
    """I2T / T2I R@1 (%) on a long-text set (``texts.jsonl`` with one cleaned text per image)."""
    bench_dir = Path(bench_dir)
    records = read_jsonl(bench_dir / "texts.jsonl")
    if not records:
        raise ValueError(f"{bench_dir / 'texts.jsonl'}: no texts")
    images = encode_images(model, image_paths(bench_dir, records), batch_size)
    texts = encode_texts(model, tokenizer, [clean_caption(r["text"]) for r in records], batch_size)
    i2t, t2i = recall_at_k(images, texts, k=1)
    return {"i2t_r1": round(i2t, 2), "t2i_r1": round(t2i, 2), "n_images": images.shape[0]}
