"""open_clip's native text transformer with LoTLIP corner tokens (paper Sec. 3.2).

Bidirectional attention, [CLS]-style first-token pooling, K learnable corner tokens after it and the corner
attention mask. ``forward`` returns the [CLS] feature (inference); ``forward_all`` returns [CLS] and every
corner feature (training).
"""

from __future__ import annotations

import torch
from open_clip.transformer import TextTransformer

from lotlip.model.attention_mask import corner_attention_mask


class CornerTextTransformer(TextTransformer):
    """A ``TextTransformer`` whose vocabulary holds K corner tokens and whose mask follows LoTLIP."""

    def __init__(self, num_corner_tokens: int = 0, corner_mask: bool = True, **text_kwargs):
        text_kwargs = {**text_kwargs, "no_causal_mask": True, "pool_type": "first"}
        text_kwargs["vocab_size"] = text_kwargs.get("vocab_size", 49408) + num_corner_tokens
        super().__init__(**text_kwargs)
        self.num_corner_tokens = num_corner_tokens
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
        """Features [B, 1 + K, D]: [CLS] then each corner, projected (not normalised)."""
        seq_len = text.shape[1]
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
