"""Counted FLOPs (``torch.utils.flop_counter``), including the CPU attention kernels torch 2.14.1 misses."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count


def _sdpa_forward(query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_backward(grad_out, query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also counts the CPU flash-attention kernels (no formula in torch 2.14.1)."""
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_forward,
               aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (no gradient)."""
    with torch.no_grad(), flop_counter() as counter:
        fn()
    return counter.get_total_flops()


def text_encoder_gflops(model: torch.nn.Module, context: int) -> float:
    """GFLOPs of encoding one text that fills ``context`` tokens (no padding) with ``model.encode_text``."""
    vocab = getattr(model, "vocab_size", None) or 1000
    tokens = torch.randint(1, min(int(vocab), 1000), (1, context))
    return count_flops(lambda: model.encode_text(tokens)) / 1e9
