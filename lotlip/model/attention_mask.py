"""The corner-token attention mask (paper Sec. 3.2; released tokenizer/model semantics).

Sequence layout: ``[CLS] [Corner0] .. [Corner{K-1}] w1 .. wn [EOT] [PAD] ..``. With query row ``i`` and key
column ``j``: no query attends to the [CLS]/corner columns, except that every non-corner query may attend to
[CLS] (column 0) and [CLS] and each corner attend to themselves; pad keys are masked for everyone. So [CLS]
and each corner see all words plus themselves but not each other, and words never see corners.

Register tokens (Table 7 ablation, ``[CLS] [Corner..] [Register..] words``) are *not* special here: they sit
after the corners and attend / are attended like words (plain attention), so [CLS] and corners may read them,
they never see corners, and corner isolation is unchanged. Giving them the corner rule instead would make them
inert (nobody reads them and their outputs are not pooled), an ablation identical to "no registers".
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=32)
def _structure(seq_len: int, num_corners: int, device: torch.device) -> torch.Tensor:
    """Boolean [L, L] of allowed (query, key) pairs from the token layout alone (cached per shape)."""
    pos = torch.arange(seq_len, device=device)
    special = pos <= num_corners  # [CLS] and corners
    corner = special & (pos > 0)
    word_key = ~special[None, :]  # [1, L]
    cls_key = (pos[None, :] == 0) & ~corner[:, None]  # non-corner queries -> [CLS]
    self_special = (pos[:, None] == pos[None, :]) & special[None, :]
    return word_key | cls_key | self_special


def corner_attention_mask(valid: torch.Tensor, num_corners: int, use_corner_mask: bool,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask [B, L, L]: 0 where query i may attend key j, the dtype's minimum elsewhere.

    Args:
        valid: [B, L] bool, True for real (non-pad) tokens.
        num_corners: K, the number of corner tokens after [CLS].
        use_corner_mask: False gives the ablation "corner tokens without mask" (padding mask only).
    """
    _, seq_len = valid.shape
    allowed = valid[:, None, :]  # [B, 1, L] pad keys masked for everyone
    if use_corner_mask and num_corners > 0:
        allowed = allowed & _structure(seq_len, num_corners, valid.device)[None]  # [B, L, L]
    else:
        allowed = allowed.expand(-1, seq_len, -1)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=valid.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)
