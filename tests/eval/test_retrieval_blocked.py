"""Blocked top-k recall equals the dense N x N computation, ties included, for any block size or memory cap."""

import pytest
import torch

from lotlip.eval.retrieval import block_rows, recall_at_k


def dense_recall(image_feats: torch.Tensor, text_feats: torch.Tensor, k: int) -> tuple[float, float]:
    """The reference: the whole similarity matrix at once, top-k per row and per column."""
    sim = image_feats @ text_feats.T
    target = torch.arange(sim.shape[0])[:, None]
    i2t = (sim.topk(k, dim=1).indices == target).any(1).sum().item()
    t2i = (sim.T.contiguous().topk(k, dim=1).indices == target).any(1).sum().item()
    return 100.0 * i2t / len(sim), 100.0 * t2i / len(sim)


@pytest.mark.parametrize("k", [1, 5])
def test_blocked_equals_dense_on_random_features(k):
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(300, 16, generator=gen), dim=-1)
    txt = torch.nn.functional.normalize(img + 0.8 * torch.randn(300, 16, generator=gen), dim=-1)
    expected = dense_recall(img, txt, k)
    for block in (1, 7, 64, 300, 4096):
        assert recall_at_k(img, txt, k=k, block=block) == pytest.approx(expected)
    # a memory cap of 10 rows of 300 float32 scores forces 10-row blocks
    assert recall_at_k(img, txt, k=k, max_block_bytes=10 * 300 * 4) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 2])
def test_ties_are_resolved_as_in_the_dense_topk(k):
    # small integer features: every score is exact, so duplicated rows tie exactly in every block shape
    gen = torch.Generator().manual_seed(1)
    img = torch.randint(-2, 3, (60, 4), generator=gen).float()
    txt = img.clone()
    txt[1::2] = txt[0::2]  # each odd text duplicates its even neighbour: ties in every image row
    img[5] = img[4]  # and duplicated images: ties in text rows
    expected = dense_recall(img, txt, k)
    for block in (1, 3, 8, 60):
        assert recall_at_k(img, txt, k=k, block=block) == expected


def test_block_rows_respects_the_memory_cap():
    assert block_rows(100_000) == 671  # 256 MiB of float32 scores
    assert block_rows(1000) == 4096
    assert block_rows(1000, block=10) == 10
    assert block_rows(10**12) == 1  # at least one row
