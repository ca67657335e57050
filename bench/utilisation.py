"""Figure 4: hardware utilisation of a training step = counted FLOPs / step time over this CPU's matmul peak.

The peak is a large square fp32 matmul measured in the same run, interleaved with the training steps (one
peak measurement, one step, ...) so that machine load hits numerator and denominator alike; both use medians.
The step is lotlip's multi-text training step (``lotlip-tiny``, 2 corner tokens, batch 128, 2 texts per image at
context 128 fully used: forward, loss, backward, AdamW), FLOPs counted by ``torch.utils.flop_counter``. To show
where the rest goes: the GEMM rate at the model's own matrix shapes, a bf16 what-if step, AdamW's step as built
(one tensor at a time on CPU) vs ``foreach`` / ``fused``, and a torch.profiler table of the step (top ops by self
CPU time) with the time split by op category.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bench.common import median
from bench.model_bench import MODEL, flop_counter, full_tokens, step_fn
from lotlip.model import create_model

CATEGORIES = {  # op -> category of the profile's time split
    **dict.fromkeys(("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
                     "aten::mkldnn_convolution", "aten::convolution_backward"), "matrix products"),
    **dict.fromkeys(("aten::_scaled_dot_product_flash_attention_for_cpu",
                     "aten::_scaled_dot_product_flash_attention_for_cpu_backward"), "attention kernels"),
    **dict.fromkeys(("aten::copy_", "aten::fill_", "aten::zero_", "aten::clone", "aten::cat", "aten::contiguous",
                     "aten::index_select", "aten::embedding_dense_backward"), "copies, fills, gathers"),
    **dict.fromkeys(("aten::gelu", "aten::gelu_backward", "aten::native_layer_norm",
                     "aten::native_layer_norm_backward", "aten::_softmax", "aten::_log_softmax",
                     "aten::_softmax_backward_data", "aten::_log_softmax_backward_data"),
                    "activations, norms, softmax"),
}
COMPUTE = ("matrix products", "attention kernels")


@dataclass(frozen=True)
class UtilSettings:
    """Sizes of figure 4."""

    batch: int = 128
    n_long: int = 1
    context: int = 128
    corners: int = 2
    rounds: int = 5
    peak_n: int = 2048
    bf16_rounds: int = 2
    profile_steps: int = 1


QUICK_UTIL = UtilSettings(batch=8, context=32, rounds=2, peak_n=256, bf16_rounds=1, profile_steps=1)


def matmul_seconds(n: int, dtype: torch.dtype = torch.float32, reps: int = 3) -> float:
    """Fastest of ``reps`` n x n x n matmuls (after one warm-up)."""
    return gemm_seconds(n, n, n, reps, dtype)


def gemm_seconds(m: int, k: int, n: int, reps: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """Fastest of ``reps`` ``[m, k] @ [k, n]`` products in ``dtype`` (after one warm-up)."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best


def model_gemm_shapes(model, batch: int, n_texts: int, context: int, peak_n: int, pairs: int = 2) -> list[dict]:
    """The step's dominant forward GEMMs (QKV, MLP up) of both towers: their rate and its ratio to the square
    peak, each measured right after a peak measurement (median of ``pairs`` paired ratios)."""
    width_t, width_v = model.text.width, model.visual.transformer.width
    img_tokens = (model.visual.image_size[0] // model.visual.patch_size[0]) ** 2 + 1
    shapes = [("text qkv", batch * n_texts * context, width_t, 3 * width_t),
              ("text mlp up", batch * n_texts * context, width_t, 4 * width_t),
              ("image qkv", batch * img_tokens, width_v, 3 * width_v),
              ("image mlp up", batch * img_tokens, width_v, 4 * width_v)]
    rows = []
    for name, m, k, n in shapes:
        rates, ratios = [], []
        for _ in range(pairs):
            peak = 2 * peak_n**3 / matmul_seconds(peak_n, reps=2)
            rates.append(2 * m * k * n / gemm_seconds(m, k, n))
            ratios.append(rates[-1] / peak)
        rows.append({"gemm": name, "m": m, "k": k, "n": n, "gflops": round(median(rates) / 1e9, 1),
                     "of_peak_pct": round(100 * median(ratios))})
    return rows


def profile_step(step, steps: int, rows: int = 12) -> dict:
    """torch.profiler over ``steps`` steps: top ops by self CPU time, time split by op category, optimizer share."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    split: dict[str, float] = {}
    for e in events:
        cat = CATEGORIES.get(e.key, "other elementwise and overhead")
        split[cat] = split.get(cat, 0.0) + e.self_cpu_time_total
    optimizer = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step"))
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return {"steps": steps, "matmul_share_pct": round(100 * sum(split.get(c, 0.0) for c in COMPUTE) / total, 1),
            "split_pct": {k: round(100 * v / total, 1) for k, v in sorted(split.items(), key=lambda kv: -kv[1])},
            "optimizer_step_share_pct": round(100 * optimizer / total, 1),
            "top_ops": [{"op": e.key, "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1e3 / steps, 1),
                         "share_pct": round(100 * e.self_cpu_time_total / total, 1), "calls_per_step":
                         e.count // steps} for e in top]}


def adamw_step_ms(model, reps: int = 5) -> dict:
    """``optimizer.step()`` of the model's AdamW as the trainers build it (default: one tensor at a time on
    CPU) vs ``foreach=True`` vs ``fused=True`` (random gradients; fastest of ``reps``)."""
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    variants = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, **kwargs)
                  for name, kwargs in variants.items()}
    best = dict.fromkeys(variants, float("inf"))
    for rep in range(reps + 1):  # round-robin, so a burst of machine load hits all three; rep 0 warms up
        for name, optimizer in optimizers.items():
            start = time.perf_counter()
            optimizer.step()
            if rep:
                best[name] = min(best[name], time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return {f"{name}_ms": round(1000 * t, 1) for name, t in best.items()}


def bench_utilisation(s: UtilSettings) -> dict:
    """Figure 4: achieved FLOP/s of the training step over the measured matmul peak."""
    torch.manual_seed(0)
    model = create_model(MODEL, num_corner_tokens=s.corners, context_length=s.context).train()
    images = torch.randn(s.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = full_tokens(s.corners, s.batch, 1 + s.n_long, s.context)
    step = step_fn(model, images, tokens)
    with flop_counter() as counter:
        step()
    flops = counter.get_total_flops()
    step()  # warm-up
    peak_s, step_s = [], []
    for _ in range(s.rounds):
        peak_s.append(matmul_seconds(s.peak_n))
        step_s.append(step())
    peak = 2 * s.peak_n**3 / median(peak_s)
    achieved = flops / median(step_s)
    bf16 = _bf16_step(model, images, tokens, s.bf16_rounds) if s.bf16_rounds else None
    return {"model": MODEL, "batch": s.batch, "texts_per_image": 1 + s.n_long, "context": s.context,
            "corner_tokens": s.corners, "rounds": s.rounds, "step_gflop": round(flops / 1e9, 2),
            "step_median_s": round(median(step_s), 4), "achieved_gflops": round(achieved / 1e9, 1),
            "peak_matmul_n": s.peak_n, "peak_gflops": round(peak / 1e9, 1),
            "peak_bf16_gflops": round(2 * s.peak_n**3 / matmul_seconds(s.peak_n, torch.bfloat16) / 1e9, 1),
            "utilisation_pct": round(100 * achieved / peak, 1), "goal_pct": 50.0,
            "best_case_utilisation_pct": round(100 * flops / min(step_s) / (2 * s.peak_n**3 / min(peak_s)), 1),
            "model_gemms": model_gemm_shapes(model, s.batch, 1 + s.n_long, s.context, s.peak_n),
            "bf16_autocast_step": bf16, "profile": profile_step(step, s.profile_steps),
            "adamw_step": adamw_step_ms(model)}


def _bf16_step(model, images: torch.Tensor, tokens: torch.Tensor, rounds: int) -> dict:
    """What-if: the same step under CPU bf16 autocast (numerics differ; opt-in in a real run)."""
    step = step_fn(model, images, tokens)

    def bf16() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step()

    bf16()
    times = [bf16() for _ in range(rounds)]
    return {"median_s": round(median(times), 4), "rounds": rounds}
