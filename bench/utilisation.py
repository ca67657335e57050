"""Figure 4: hardware utilisation of a training step = counted FLOPs / step time over this CPU's matmul peak.

The step is the trainer's ``TrainStep`` (``lotlip-tiny``, 2 corner tokens, batch 128, 2 texts per image at context
128 fully used: forward, multi-text loss, backward, fused AdamW), FLOPs counted once by ``torch.utils.flop_counter``
on the fp32 step (FLOPs depend on shapes, not dtype). The same model's fp32 step and bf16 step (``precision="bf16"``,
CPU autocast) and a large square matmul in each dtype are measured in one loop, interleaved ABBA (peak, step per
precision; order reversed every round) so machine load hits numerators and denominators alike; all use medians.
Each precision's utilisation is against the peak of its own dtype (figure 4b). To show where the rest goes: the
GEMM rate at the model's own matrix shapes, AdamW's step as built (one tensor at a time on CPU) vs ``foreach`` /
``fused``, and torch.profiler tables of both steps (top ops by self CPU time) with the time split by op category.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    rounds: int = 6  # ABBA rounds; each times a step and a square matmul of both precisions
    peak_n: int = 2048
    profile_steps: int = 1
    bf16_max_step_s: float = 30.0  # skip the bf16 step where it would be slower (CPUs without bf16 kernels)


QUICK_UTIL = UtilSettings(batch=8, context=32, rounds=2, peak_n=256, profile_steps=1, bf16_max_step_s=120.0)
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # TrainStep precision -> its matmul dtype


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


def precision_rounds(steps: dict[str, Callable[[], float]], peak_n: int, rounds: int) -> dict[str, dict]:
    """Step and square-matmul times per precision, interleaved ABBA: each round measures every precision's
    matmul peak right before (A) or after (B) its step, precisions in turn, the order reversed every other round,
    so that machine load hits steps and peaks of both precisions alike."""
    names = list(steps)
    times: dict[str, dict[str, list[float]]] = {k: {"step": [], "peak": []} for k in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            pair = ("peak", "step") if r % 2 == 0 else ("step", "peak")
            for what in pair:
                t = matmul_seconds(peak_n, PEAK_DTYPES[name]) if what == "peak" else steps[name]()
                times[name][what].append(t)
    return times


def _precision_row(times: dict[str, list[float]], flops: int, peak_n: int, batch: int) -> dict:
    step, peak = median(times["step"]), 2 * peak_n**3 / median(times["peak"])
    return {"step_median_s": round(step, 4), "step_min_s": round(min(times["step"]), 4),
            "samples_per_s": round(batch / step, 1), "achieved_gflops": round(flops / step / 1e9, 1),
            "peak_gflops": round(peak / 1e9, 1), "utilisation_pct": round(100 * flops / step / peak, 1),
            "step_times_s": [round(t, 4) for t in times["step"]],
            "peak_times_s": [round(t, 5) for t in times["peak"]]}


def _speedup(times: dict[str, dict[str, list[float]]]) -> dict:
    """bf16 over fp32: ratio of the median steps, median of the paired per-round ratios, and of the peaks."""
    paired = [a / b for a, b in zip(times["fp32"]["step"], times["bf16"]["step"], strict=True)]
    peaks = [a / b for a, b in zip(times["fp32"]["peak"], times["bf16"]["peak"], strict=True)]
    return {"step_speedup": round(median(times["fp32"]["step"]) / median(times["bf16"]["step"]), 2),
            "step_speedup_paired": round(median(paired), 2), "peak_speedup": round(median(peaks), 2)}


def cpu_bf16_flags() -> list[str]:
    """The CPU's flags that give torch fast bf16 matmuls (oneDNN needs AVX-512 at least; BF16/AMX are native)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return []
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("flags")), [])
    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]


def bf16_feasible(flops: int, s: UtilSettings) -> tuple[bool, float, str]:
    """(run the bf16 step?, bf16 matmul GFLOP/s, why not): CPUs without bf16 matmul kernels (AVX2 only) fall
    back to a scalar loop at about 1 GFLOP/s, where one full-size bf16 step would take many minutes."""
    n = min(s.peak_n, 512)  # small: the fallback loop needs ~30 s for one 2048^3 product
    rate = 2 * n**3 / matmul_seconds(n, torch.bfloat16, reps=2)
    predicted = flops / rate
    why = (f"not measured: the bf16 square matmul runs at {rate / 1e9:.1f} GFLOP/s on this CPU (no bf16 matmul "
           f"kernels), so one bf16 step would take about {predicted:.0f} s (limit {s.bf16_max_step_s:.0f} s)")
    return predicted <= s.bf16_max_step_s, rate / 1e9, why


def reduced_precision_rows(model, s: UtilSettings, flops: int, bf16_rate: float, why: str) -> dict:
    """Figure 4b where a full-size bf16 step is too slow (no bf16 kernels): both precisions measured side by side
    at the largest batch whose bf16 step fits ``bf16_max_step_s`` and a matmul size the fallback loop can time."""
    batch = max(2, int(s.batch * s.bf16_max_step_s / (flops / (bf16_rate * 1e9))) // 2 * 2)
    peak_n = min(s.peak_n, 512)
    images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = full_tokens(s.corners, batch, 1 + s.n_long, s.context)
    steps = {name: step_fn(model, images, tokens, precision=name) for name in PEAK_DTYPES}
    with flop_counter() as counter:
        steps["fp32"]()
    small_flops = counter.get_total_flops()
    steps["bf16"]()  # warm-up of its first autocast step
    rounds = max(2, min(s.rounds, 4))
    times = precision_rounds(steps, peak_n, rounds)
    rows = {name: _precision_row(t, small_flops, peak_n, batch) for name, t in times.items()}
    return {**rows, **_speedup(times), "reduced": {"batch": batch, "peak_matmul_n": peak_n, "rounds": rounds,
                                                   "step_gflop": round(small_flops / 1e9, 2),
                                                   "why": why.removeprefix("not measured: ")}}


def bench_utilisation(s: UtilSettings) -> dict:
    """Figure 4: achieved FLOP/s of the training step over the measured matmul peak, fp32 and bf16 (4b)."""
    torch.manual_seed(0)
    model = create_model(MODEL, num_corner_tokens=s.corners, context_length=s.context).train()
    images = torch.randn(s.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = full_tokens(s.corners, s.batch, 1 + s.n_long, s.context)
    steps = {name: step_fn(model, images, tokens, precision=name) for name in PEAK_DTYPES}  # one model, two steps
    with flop_counter() as counter:  # FLOPs depend on shapes only: counted once, on the fp32 step
        steps["fp32"]()
    flops = counter.get_total_flops()
    run_bf16, bf16_rate, why = bf16_feasible(flops, s)
    if not run_bf16:
        del steps["bf16"]
    for step in steps.values():  # warm-up (bf16: its first autocast step)
        step()
    times = precision_rounds(steps, s.peak_n, s.rounds)
    rows = {name: _precision_row(t, flops, s.peak_n, s.batch) for name, t in times.items()}
    fp32 = rows["fp32"]
    best = flops / fp32["step_min_s"] / (2 * s.peak_n**3 / min(times["fp32"]["peak"]))
    precision = {**rows, **_speedup(times)} if run_bf16 else reduced_precision_rows(model, s, flops, bf16_rate, why)
    precision["bf16_kernels"] = precision["peak_speedup"] >= 1.0  # else the "peak" is a fallback loop, no peak
    precision["cpu_flags"] = cpu_bf16_flags()
    return {"model": MODEL, "batch": s.batch, "texts_per_image": 1 + s.n_long, "context": s.context,
            "corner_tokens": s.corners, "rounds": s.rounds, "step_gflop": round(flops / 1e9, 2),
            "step_median_s": fp32["step_median_s"], "achieved_gflops": fp32["achieved_gflops"],
            "peak_matmul_n": s.peak_n, "peak_gflops": fp32["peak_gflops"],
            "peak_bf16_gflops": precision["bf16"]["peak_gflops"],
            "utilisation_pct": fp32["utilisation_pct"], "goal_pct": 50.0,
            "best_case_utilisation_pct": round(100 * best, 1), "precision": {**precision, "goal_pct": 50.0},
            "model_gemms": model_gemm_shapes(model, s.batch, 1 + s.n_long, s.context, s.peak_n),
            "profile": profile_step(steps["fp32"], s.profile_steps),
            "bf16_profile": profile_step(steps["bf16"], s.profile_steps) if run_bf16 else None,
            "adamw_step": adamw_step_ms(model)}
