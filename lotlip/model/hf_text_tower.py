"""Hugging Face BERT text tower with LoTLIP corner tokens (the released ``lotlip_bert-*`` models).

Attribute names follow open_clip's ``HFTextEncoder`` (``transformer`` = the ``BertModel`` incl. its pooler,
``proj`` = bias-free linear), so state dicts match the release's ``text.*`` keys. The corner mask reaches BERT
as a 4-D additive float mask: transformers 5 rejects 3-D int masks and ignores 4-D boolean ones under eager.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import BertConfig, BertModel

from lotlip.model.attention_mask import corner_attention_mask
from lotlip.model.packaged import packaged_model_folder

MAX_LENGTH_GROUPS = 4  # separate BERT passes per batch; more saves little and adds per-pass overhead


class BertCornerTextEncoder(nn.Module):
    """``BertModel`` + K corner tokens after [CLS]; pooled = BERT pooler on [CLS]/corners, then ``proj``.

    ``forward`` returns the [CLS] feature [B, D] (inference); ``forward_all`` returns [CLS] and every corner
    feature [B, 1 + K, D] (training). The K new embedding rows are drawn N(0, initializer_range). R register
    tokens (Table 7 ablation) get R more rows after the corners; their outputs are never pooled.
    """

    def __init__(self, transformer: BertModel, output_dim: int, num_corner_tokens: int = 0,
                 corner_mask: bool = True, context_length: int | None = None, num_register_tokens: int = 0):
        super().__init__()
        config = transformer.config
        if transformer.pooler is None:
            raise ValueError("BertModel needs its pooling layer (add_pooling_layer=True) for cls_pooler")
        self.context_length = context_length or config.max_position_embeddings
        if self.context_length > config.max_position_embeddings:
            raise ValueError(f"text_cfg.context_length {self.context_length} exceeds the BERT "
                             f"max_position_embeddings {config.max_position_embeddings}")
        self.base_vocab_size = config.vocab_size
        if num_corner_tokens + num_register_tokens > 0:
            _add_embedding_rows(transformer, num_corner_tokens + num_register_tokens)
        self.transformer = transformer
        self.proj = nn.Linear(config.hidden_size, output_dim, bias=False)
        self.output_dim = output_dim
        self.num_corner_tokens = num_corner_tokens
        self.num_register_tokens = num_register_tokens
        self.corner_mask = corner_mask
        self.vocab_size = config.vocab_size
        self.pad_id = config.pad_token_id if config.pad_token_id is not None else 0

    def forward_all(self, text: torch.Tensor) -> torch.Tensor:
        """Features [B, 1 + K, D]: [CLS] then each corner, pooled and projected; register outputs are dropped.

        Trailing padding is not encoded: the rows go through BERT in a few length groups, each cut to its
        longest row (:func:`length_groups`). Pad keys are masked for every query, so the features are those of
        the full padded batch up to float rounding, at a fraction of the cost when most rows are short.
        """
        lengths = text.shape[1] - (text != self.pad_id).flip(1).int().argmax(1)
        groups = length_groups(lengths)
        if len(groups) == 1:
            return self._encode(text[:, : int(lengths.max())])
        feats = torch.cat([self._encode(text[rows, :length]) for rows, length in groups])
        order = torch.cat([rows for rows, _ in groups])
        return feats[torch.argsort(order)]

    def _encode(self, text: torch.Tensor) -> torch.Tensor:
        """Features [B, 1 + K, D] of ``text`` as given (padding included)."""
        dtype = self.transformer.embeddings.word_embeddings.weight.dtype
        mask = corner_attention_mask(text != self.pad_id, self.num_corner_tokens, self.corner_mask, dtype)
        hidden = self.transformer(input_ids=text, attention_mask=mask[:, None]).last_hidden_state
        pooler = self.transformer.pooler
        pooled = pooler.activation(pooler.dense(hidden[:, : 1 + self.num_corner_tokens]))
        return self.proj(pooled)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """The [CLS] feature [B, D], the only one used at inference."""
        return self.forward_all(text)[:, 0]

    def lock(self, unlocked_layers: int = 0, freeze_layer_norm: bool = True) -> None:
        """Freeze the embeddings and all but the last ``unlocked_layers`` BERT layers (``proj`` stays trainable)."""
        layers = list(self.transformer.encoder.layer)
        frozen = [self.transformer.embeddings, *layers[: max(0, len(layers) - unlocked_layers)]]
        if not unlocked_layers:
            frozen.append(self.transformer.pooler)
        for module in frozen:
            for name, param in module.named_parameters():
                param.requires_grad = "LayerNorm" in name.split(".") and not freeze_layer_norm

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if enable:
            self.transformer.gradient_checkpointing_enable()
        else:
            self.transformer.gradient_checkpointing_disable()


def length_groups(lengths: torch.Tensor, max_groups: int = MAX_LENGTH_GROUPS) -> list[tuple[torch.Tensor, int]]:
    """Rows split into at most ``max_groups`` groups of similar length, as (row indices, longest length) pairs.

    The rows are sorted by length and cut where the tokens encoded (rows x longest length, summed over groups)
    are fewest (dynamic programming over the cut points); a cut that saves nothing is not made. E.g. a training
    batch of raw captions (~10 tokens) and long sub-captions (20-50) encodes each group at its own length
    instead of every row at the longest. Only cuts between distinct lengths can be best, so the work grows with
    the number of distinct lengths (at most the context length), not with the batch.
    """
    ordered, rows = torch.sort(lengths.cpu(), stable=True)
    values, counts = torch.unique_consecutive(ordered, return_counts=True)
    below = torch.cat([counts.new_zeros(1), counts.cumsum(0)])  # below[i]: rows shorter than values[i]
    m, longest = len(values), values.double()
    # cost[g][i]: fewest tokens for the rows of the i shortest lengths in g groups; start[g][i]: the last group's
    # first length (argmin takes the first of equal options, so ties go to the earliest cut)
    cost, start = [torch.full((m + 1,), math.inf, dtype=torch.float64)], [torch.zeros(m + 1, dtype=torch.long)]
    cost[0][0] = 0
    for g in range(1, min(max_groups, m) + 1):
        row, first = torch.full((m + 1,), math.inf, dtype=torch.float64), torch.zeros(m + 1, dtype=torch.long)
        for i in range(g, m + 1):
            options = cost[g - 1][:i] + (below[i] - below[:i]) * longest[i - 1]
            first[i] = torch.argmin(options)
            row[i] = options[first[i]]
        cost.append(row)
        start.append(first)
    groups = min(range(1, len(cost)), key=lambda g: (float(cost[g][m]), g))  # fewest tokens, then fewest groups
    bounds, end = [], m
    for g in range(groups, 0, -1):
        bounds.append((int(start[g][end]), end))
        end = bounds[-1][0]
    rows = rows.to(lengths.device)
    return [(rows[int(below[lo]):int(below[hi])], int(values[hi - 1])) for lo, hi in reversed(bounds)]


def _add_embedding_rows(transformer: BertModel, count: int) -> None:
    """Grow the word embedding by ``count`` rows drawn N(0, initializer_range), as the release does."""
    base = transformer.config.vocab_size
    transformer.resize_token_embeddings(base + count, mean_resizing=False)
    with torch.no_grad():
        transformer.get_input_embeddings().weight[base:].normal_(0.0, transformer.config.initializer_range)


def load_bert(text_cfg: dict) -> BertModel:
    """The ``BertModel`` (with pooler) named by ``text_cfg``.

    ``hf_pretrained`` (a packaged model, see :mod:`lotlip.model.packaged`) loads that package's pretrained weights
    offline (its config when ``hf_model_pretrained`` is false); an ``hf_config`` next to it is the expected
    architecture, checked. Otherwise ``hf_config`` (a ``BertConfig`` dict; ``{}`` is the bert-base-uncased
    architecture) gives a random init offline, and ``hf_model_name`` (HF name or local folder) is loaded with its
    weights unless ``hf_model_pretrained`` is false. ``hf_attn_implementation`` picks "eager" or "sdpa".
    """
    attn = text_cfg.get("hf_attn_implementation")
    extra = {"attn_implementation": attn} if attn else {}
    if text_cfg.get("hf_pretrained"):
        return _load_packaged(text_cfg, extra)
    if text_cfg.get("hf_config") is not None:
        return BertModel(BertConfig(**text_cfg["hf_config"], **extra), add_pooling_layer=True)
    name = text_cfg.get("hf_model_name")
    if not name:
        raise ValueError("text_cfg: needs 'hf_model_name' or 'hf_config' for the BERT text tower")
    try:
        if text_cfg.get("hf_model_pretrained", True):
            return BertModel.from_pretrained(name, add_pooling_layer=True, **extra)
        return BertModel(BertConfig.from_pretrained(name, **extra), add_pooling_layer=True)
    except OSError as exc:
        raise OSError(f"text_cfg.hf_model_name {name!r}: not a local folder or cached HF model; offline, "
                      f"set text_cfg.hf_config instead ({exc})") from None


def _load_packaged(text_cfg: dict, extra: dict) -> BertModel:
    """The packaged model ``text_cfg.hf_pretrained``, in fp32, its architecture checked against ``hf_config``."""
    name = text_cfg["hf_pretrained"]
    folder = packaged_model_folder(name)
    if text_cfg.get("hf_model_pretrained", True):
        model = BertModel.from_pretrained(folder, add_pooling_layer=True, local_files_only=True,
                                          dtype=torch.float32, **extra)
    else:
        model = BertModel(BertConfig.from_pretrained(folder, local_files_only=True, **extra), add_pooling_layer=True)
    wrong = {key: (want, getattr(model.config, key, None)) for key, want in (text_cfg.get("hf_config") or {}).items()
             if getattr(model.config, key, None) != want}
    if wrong:
        raise ValueError(f"text_cfg.hf_config disagrees with hf_pretrained {name!r}: "
                         + ", ".join(f"{key} {want} != {got}" for key, (want, got) in wrong.items()))
    return model


def build_hf_text_tower(text_cfg: dict, embed_dim: int, num_corner_tokens: int,
                        corner_mask: bool, num_register_tokens: int = 0) -> BertCornerTextEncoder:
    """The text tower of an ``hf_bert`` model config (open_clip ``text_cfg`` keys plus ``hf_config``)."""
    for key, supported in (("hf_pooler_type", "cls_pooler"), ("hf_proj_type", "linear")):
        if text_cfg.get(key, supported) != supported:
            raise ValueError(f"text_cfg.{key} {text_cfg[key]!r}: only {supported!r} is supported")
    return BertCornerTextEncoder(load_bert(text_cfg), embed_dim, num_corner_tokens, corner_mask,
                                 context_length=text_cfg.get("context_length"),
                                 num_register_tokens=num_register_tokens)
