"""Corner-token tokenizer on open_clip's BPE: ``[SOT] [Corner0..K-1] [Register0..R-1] words [EOT] [PAD]``.

Register tokens (paper Table 7, the "corner vs register tokens" ablation) follow the corners; their outputs are
never pooled (see ``lotlip.model.attention_mask`` for how they attend).
"""

from __future__ import annotations

import torch
from open_clip.tokenizer import SimpleTokenizer


def corner_token_names(num_corners: int) -> list[str]:
    """The special tokens added to the BPE vocabulary, in order.

    Not ``[Corner0]`` as in the BERT release: open_clip 3.3.0 joins special tokens into its split regex
    unescaped, so square brackets would become a character class and shred ordinary words.
    """
    return [f"<corner{i}>" for i in range(num_corners)]


def register_token_names(num_registers: int) -> list[str]:
    """The register special tokens added after the corner tokens, in order."""
    return [f"<register{i}>" for i in range(num_registers)]


class CornerTokenizer:
    """Tokenise texts for the native corner-token tower; corners (then registers) go right after the start token.

    The corner and register tokens are appended to the BPE vocabulary as special tokens, so their ids are
    ``base_vocab .. base_vocab + K + R - 1`` and the text tower's embedding has K + R extra rows, as in the release.
    """

    def __init__(self, context_length: int, num_corners: int = 0, num_registers: int = 0):
        self.context_length = context_length
        self.num_corners = num_corners
        self.num_registers = num_registers
        names = corner_token_names(num_corners) + register_token_names(num_registers)
        self._bpe = SimpleTokenizer(context_length=context_length, additional_special_tokens=names or None)
        self.vocab_size = self._bpe.vocab_size
        self.corner_ids = [self._bpe.encoder[t] for t in corner_token_names(num_corners)]
        self.register_ids = [self._bpe.encoder[t] for t in register_token_names(num_registers)]
        self.pad_id = 0

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        """Token ids [N, context_length]; texts longer than the context are truncated (EOT kept)."""
        if isinstance(texts, str):
            texts = [texts]
        head = [self._bpe.sot_token_id, *self.corner_ids, *self.register_ids]
        room = self.context_length - len(head) - 1
        if room < 1:
            raise ValueError(f"context_length {self.context_length} leaves no room for words with "
                             f"{self.num_corners} corner and {self.num_registers} register tokens")
        out = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = head + self._bpe.encode(text)[:room] + [self._bpe.eot_token_id]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def count_tokens(self, text: str) -> int:
        """Untruncated BPE token count of ``text`` (without special tokens)."""
        return len(self._bpe.encode(text))


def trim_padding(tokens: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Drop trailing columns that are padding in every row (outputs are unchanged under the pad mask)."""
    used = (tokens != pad_id).any(dim=0).nonzero()
    return tokens[..., : int(used.max()) + 1] if used.numel() else tokens
