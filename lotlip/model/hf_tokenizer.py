"""Corner-token tokenizer on a BERT WordPiece vocabulary: ``[CLS] [Corner0..K-1] words [SEP] [PAD] ..``.

Follows the release: the K corner tokens are added as special tokens (ids ``vocab .. vocab + K - 1``), sentence
breaks ``". "`` become [SEP], then every text is cleaned as the release's HF tokenizer wrapper does (open_clip's
``basic_clean``: ftfy ``fix_text``, HTML unescaped twice; then ``whitespace_clean``: runs of whitespace collapsed),
and texts are truncated to ``context_length`` keeping the final [SEP]. R optional register tokens (paper Table 7
ablation; ids ``vocab + K .. vocab + K + R - 1``) follow the corners.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch
from open_clip.tokenizer import basic_clean, whitespace_clean
from transformers import BertTokenizer

from lotlip.model.packaged import packaged_model_folder

# A built-in vocabulary for offline tiny models: specials, single characters and their "##" continuations (so
# any lowercase ASCII text tokenises without [UNK]) plus a few common words.
TINY_VOCAB_NAME = "lotlip:tiny-wordpiece"
_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CHARS = list(string.ascii_lowercase + string.digits + ".,;:!?'\"-()/&")
_WORDS = """a an the and or of in on at to with without is are its it this that there here image photo picture
shows showing shown left right top bottom middle centre center above below near next behind front corner side
red green blue yellow orange purple pink brown black white grey gray dark light small medium large big
circle square triangle diamond cross star shape shapes object objects dotted striped plain background sky grass
sand one two three four five six seven eight nine ten""".split()


def corner_token_names(num_corners: int) -> list[str]:
    """The special tokens added to the BERT vocabulary, in order (as in the release)."""
    return [f"[Corner{i}]" for i in range(num_corners)]


def register_token_names(num_registers: int) -> list[str]:
    """The register special tokens added after the corners, in order."""
    return [f"[Register{i}]" for i in range(num_registers)]


def tiny_vocab() -> list[str]:
    """The built-in tiny WordPiece vocabulary (its length is the tiny config's ``vocab_size``)."""
    vocab = _SPECIALS + _CHARS + [f"##{c}" for c in string.ascii_lowercase + string.digits]
    return vocab + [w for w in dict.fromkeys(_WORDS) if w not in vocab]


def load_bert_tokenizer(name: str) -> BertTokenizer:
    """A WordPiece tokenizer from a vocab.txt file, a local folder / cached HF name, or :data:`TINY_VOCAB_NAME`."""
    if name == TINY_VOCAB_NAME:
        return BertTokenizer(vocab={tok: i for i, tok in enumerate(tiny_vocab())}, do_lower_case=True)
    path = Path(name)
    if path.is_file():
        tokens = path.read_text(encoding="utf-8").splitlines()
        return BertTokenizer(vocab={tok: i for i, tok in enumerate(tokens)}, do_lower_case=True)
    why = "no vocabulary found"
    try:
        tok = BertTokenizer.from_pretrained(name)
        if len(tok) > len(_SPECIALS):  # transformers 5 silently returns a specials-only vocab when files are missing
            return tok
    except OSError as exc:
        why = str(exc)
    raise OSError(f"text_cfg.hf_tokenizer_name {name!r}: not a vocab file, a local folder or a cached HF "
                  f"tokenizer ({why})")


def clean_text(text: str) -> str:
    """The release's text cleaning: ftfy, HTML unescaped twice, whitespace collapsed and stripped."""
    return whitespace_clean(basic_clean(text))


class BertCornerTokenizer:
    """Tokenise texts for the HF BERT corner-token tower; same interface as ``CornerTokenizer``."""

    def __init__(self, tokenizer: BertTokenizer, context_length: int, num_corners: int = 0, num_registers: int = 0):
        self.context_length = context_length
        self.num_corners = num_corners
        self.num_registers = num_registers
        self._tok = tokenizer
        self.base_vocab_size = len(tokenizer)
        names = corner_token_names(num_corners) + register_token_names(num_registers)
        tokenizer.add_tokens(names, special_tokens=True)
        ids = tokenizer.convert_tokens_to_ids(names)
        if ids != list(range(self.base_vocab_size, self.base_vocab_size + len(names))):
            raise ValueError(f"corner/register tokens got ids {ids}, expected to follow the base vocabulary "
                             f"of {self.base_vocab_size} (is the tokenizer already carrying added tokens?)")
        self.corner_ids, self.register_ids = ids[:num_corners], ids[num_corners:]
        self.vocab_size = len(tokenizer)
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
        if context_length < len(names) + 3:
            raise ValueError(f"context_length {context_length} leaves no room for words with {num_corners} corners "
                             f"and {num_registers} registers")

    def _content(self, texts: list[str]) -> list[list[int]]:
        """Word-piece ids per text, with every ``". "`` sentence break replaced by [SEP] (split first, as the
        release joins on [SEP] before cleaning: a break the cleaning creates stays a plain period)."""
        pieces = [[clean_text(p) for p in text.split(". ")] for text in texts]
        flat = [p for parts in pieces for p in parts]
        ids = self._tok(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else []
        out, pos = [], 0
        for parts in pieces:
            joined: list[int] = []
            for k, piece_ids in enumerate(ids[pos: pos + len(parts)]):
                joined += ([self.sep_id] if k else []) + piece_ids
            out.append(joined)
            pos += len(parts)
        return out

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        """Token ids [N, context_length]; texts longer than the context are truncated (final [SEP] kept)."""
        if isinstance(texts, str):
            texts = [texts]
        head = [self.cls_id, *self.corner_ids, *self.register_ids]
        room = self.context_length - len(head) - 1
        out = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        for i, content in enumerate(self._content(list(texts))):
            ids = head + content[:room] + [self.sep_id]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def count_tokens(self, text: str) -> int:
        """Untruncated count of word pieces and sentence-break [SEP]s (no [CLS], corners, registers, final [SEP])."""
        return len(self._content([text])[0])


def build_hf_tokenizer(text_cfg: dict, num_corner_tokens: int, num_register_tokens: int = 0) -> BertCornerTokenizer:
    """The tokenizer for an ``hf_bert`` model config's ``text_cfg``.

    Uses ``hf_tokenizer_name``, else the ``vocab.txt`` of packaged model ``hf_pretrained``, else ``hf_model_name``;
    checks the base vocabulary against ``hf_config.vocab_size`` when the config carries one, so corner ids match
    the tower's extra embedding rows.
    """
    name = text_cfg.get("hf_tokenizer_name")
    if not name and text_cfg.get("hf_pretrained"):
        name = str(packaged_model_folder(text_cfg["hf_pretrained"]) / "vocab.txt")
    name = name or text_cfg.get("hf_model_name")
    if not name:
        raise ValueError("text_cfg: needs 'hf_tokenizer_name' or 'hf_model_name' for the BERT tokenizer")
    tok = BertCornerTokenizer(load_bert_tokenizer(name), int(text_cfg.get("context_length", 77)), num_corner_tokens,
                              num_register_tokens)
    expected = text_cfg.get("hf_config", {}).get("vocab_size")
    if expected is not None and expected != tok.base_vocab_size:
        raise ValueError(f"text_cfg.hf_config.vocab_size {expected} != {tok.base_vocab_size} tokens in "
                         f"hf_tokenizer_name {name!r}")
    return tok
