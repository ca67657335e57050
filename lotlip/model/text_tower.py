"""open_clip's native text transformer with LoTLIP corner tokens (paper Sec. 3.2).

Bidirectional attention, [CLS]-style first-token pooling, K learnable corner tokens after it and the corner
attention mask. ``forward`` returns the [CLS] feature (inference); ``forward_all`` returns [CLS] and every
corner feature (training). R optional register tokens follow the corners (Table 7 ablation); their outputs
are never returned, so they cannot reach the loss.
"""

from __future__ import annotations

import torch
from open_clip.transformer import TextTransformer

from lotlip.constants import LONGCLIP_CONTEXT as LONGCLIP_CONTEXT  # re-exported (defined torch-free)
from lotlip.constants import LONGCLIP_FACTOR, LONGCLIP_KEEP
from lotlip.model.attention_mask import corner_attention_mask


def stretch_positional_embedding(pos: torch.Tensor, keep: int = LONGCLIP_KEEP,
                                 factor: int = LONGCLIP_FACTOR) -> torch.Tensor:
    """Long-CLIP's knowledge-preserved stretching: [L, W] -> [keep + (L - keep) * factor, W].

    Rows ``0 .. keep-1`` are copied; the remaining rows are resampled at a step of ``1 / factor`` by linear
    interpolation between neighbours (row ``keep + factor * j`` equals old row ``keep + j``); past the last old
    row the last difference is extrapolated. 77 positions become 248 (Long-CLIP, ECCV'24, Sec. 3.1).
    """
    length = pos.shape[0]
    if not 0 < keep < length - 1 or factor < 1:
        raise ValueError(f"stretch: keep={keep}, factor={factor} do not fit {length} positions")
    where = keep + torch.arange((length - keep) * factor, dtype=torch.float64) / factor  # fractional old rows
    left = where.floor().long().clamp(max=length - 2)
    frac = (where - left).to(pos.dtype)[:, None]
    tail = pos[left] + frac * (pos[left + 1] - pos[left])
    return torch.cat([pos[:keep], tail])


class CornerTextTransformer(TextTransformer):
    """A ``TextTransformer`` whose vocabulary holds K corner + R register tokens and whose mask follows LoTLIP."""

    def __init__(self, num_corner_tokens: int = 0, corner_mask: bool = True, num_register_tokens: int = 0,
                 **text_kwargs):
        text_kwargs = {**text_kwargs, "no_causal_mask": True, "pool_type": "first"}
        extra = num_corner_tokens + num_register_tokens
        text_kwargs["vocab_size"] = text_kwargs.get("vocab_size", 49408) + extra
        super().__init__(**text_kwargs)
        self.num_corner_tokens = num_corner_tokens
        self.num_register_tokens = num_register_tokens
        self.corner_mask = corner_mask

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, torch.nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection

    def valid_tokens(self, text: torch.Tensor) -> torch.Tensor:
        """[B, L] bool: every position up to and including the first end-of-text token."""
        is_eot = text == self.eos_id
        first_eot = torch.where(is_eot.any(1), is_eot.int().argmax(1), text.shape[1] - 1)  # [B]
        return torch.arange(text.shape[1], device=text.device)[None] <= first_eot[:, None]

    def forward_all(self, text: torch.Tensor) -> torch.Tensor:
        """Features [B, 1 + K, D]: [CLS] then each corner, projected (not normalised); registers dropped."""
        seq_len = text.shape[1]
        if seq_len > self.positional_embedding.shape[0]:
            raise ValueError(f"text length {seq_len} exceeds the tower's context_length {self.context_length}")
        x = self.token_embedding(text)  # [B, L, W]
        x = x + self.positional_embedding[:seq_len].to(x.dtype)
        mask = corner_attention_mask(self.valid_tokens(text), self.num_corner_tokens, self.corner_mask, x.dtype)
        mask = mask.repeat_interleave(self.heads, 0)  # [B*H, L, L]
        x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x[:, : 1 + self.num_corner_tokens])  # [B, 1+K, W]
        return self._project(x)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """The [CLS] feature [B, D], the only one used at inference."""
        return self.forward_all(text)[:, 0]

    def stretch_context(self, keep: int = LONGCLIP_KEEP, factor: int = LONGCLIP_FACTOR) -> None:
        """Replace the positional embedding by its Long-CLIP stretch and grow ``context_length`` to match."""
        with torch.no_grad():
            stretched = stretch_positional_embedding(self.positional_embedding.detach(), keep, factor)
        self.positional_embedding = torch.nn.Parameter(stretched)
        self.num_pos = self.context_length = stretched.shape[0]
