"""Model benchmarks: corner-token training overhead (paper Sec. 3.2) and text-encoder cost vs context (Fig. 4).

(a) Training-step time of ``lotlip-tiny`` with 0 vs 2 corner tokens at a fixed, fully used context (random token
    ids, no padding): steps of the two models are interleaved so machine load affects both alike; the overhead
    is the median of the paired step-time ratios (and, for reference, the ratio of the fastest steps and of the
    counted FLOPs).
(b) Text-encoder FLOPs per text at context 77/128/192/256 (``torch.utils.flop_counter.FlopCounterMode``; torch
    2.14.1 has no formula for the CPU flash-attention kernel, so one is registered here) and the measured
    ``encode_text`` time; also the FLOPs of the paper's BERT-base text tower (count only).
(c) Training-step time and FLOPs at context 77/128/192/256 (2 corners, contexts fully used, round-robin).

Run through ``python -m bench`` (figures 2 and 3); ``python bench/model_bench.py [--quick] [--out DIR]`` runs only
these figures the same way.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from lotlip.model import MultiTextClipLoss, create_model, get_tokenizer
from lotlip.model.attention_mask import corner_attention_mask
from lotlip.model.factory import LoTLIP
from lotlip.model.flops import count_flops, flop_counter
from lotlip.model.hf_text_tower import build_hf_text_tower
from lotlip.train.step import TrainStep

HERE = Path(__file__).resolve().parent
MODEL = "lotlip-tiny"
CORNERS = (0, 2)


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run."""

    batch: int = 128
    n_long: int = 1  # long texts per image: tokens [B, 1 + n_long, context]
    context: int = 128
    warmup: int = 1  # untimed steps per model, the first FLOP-counted
    rounds: int = 20
    min_rounds: int = 6
    budget_s: float = 45.0  # stop interleaving after this many seconds (once min_rounds are done)
    work_reps: int = 30
    contexts: tuple[int, ...] = (77, 128, 192, 256)
    encode_batch: int = 128
    encode_reps: int = 3
    bert_base: bool = True
    threads: int = 2
    context_rounds: int = 3
    context_batch: int = 64  # (c): the step at context 256 is ~5x the one at 77


QUICK = Settings(batch=8, context=32, warmup=1, rounds=2, min_rounds=2, work_reps=2, contexts=(16, 32),
                 encode_batch=8, encode_reps=1, bert_base=False, threads=1, context_rounds=1, context_batch=8)


def full_tokens(num_corners: int, batch: int, n_texts: int, context: int, seed: int = 0) -> torch.Tensor:
    """Token ids [B, T, L] with no padding: [SOT] [corners] random words [EOT] (so the context is really L)."""
    empty = get_tokenizer(MODEL, num_corner_tokens=num_corners, context_length=context)([""])[0]
    head, eot = empty[: 1 + num_corners], empty[1 + num_corners]
    gen = torch.Generator().manual_seed(seed)
    words = torch.randint(1, int(head[0]), (batch, n_texts, context - len(head) - 1), generator=gen)  # < SOT, EOT
    return torch.cat([head.expand(batch, n_texts, -1), words, eot.expand(batch, n_texts, 1)], dim=-1)


def bench_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """Fused AdamW with the trainer's betas and eps (``lotlip.train.loop._optimizer``; one parameter group)."""
    return torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, fused=True)


def train_step(model: LoTLIP, precision: str = "fp32", device: str | torch.device = "cpu",
               loss_fn: torch.nn.Module | None = None, **kwargs) -> TrainStep:
    """The trainer's :class:`TrainStep` for ``model``: multi-text loss (``loss_fn``: another one), fused AdamW;
    ``kwargs`` go to TrainStep."""
    return TrainStep(model, bench_optimizer(model), loss_fn or MultiTextClipLoss(), torch.device(device),
                     precision=precision, **kwargs)


def step_fn(model: LoTLIP, images: torch.Tensor, tokens: torch.Tensor, precision: str = "fp32") -> Callable[[], float]:
    """A closure running one training step (the trainer's ``TrainStep``: forward, multi-text loss, backward,
    AdamW) and returning its seconds."""
    step = train_step(model, precision)

    def timed() -> float:
        start = time.perf_counter()
        step(images, tokens)
        return time.perf_counter() - start

    return timed


def interleaved_times(steps: dict[int, Callable[[], float]], s: Settings) -> dict[int, list[float]]:
    """Step times per K, alternating ABBA (cancels slow drifts in machine load) until rounds or budget run out."""
    times: dict[int, list[float]] = {k: [] for k in steps}
    deadline = time.perf_counter() + s.budget_s
    for r in range(s.rounds):
        if r >= s.min_rounds and time.perf_counter() > deadline:
            break
        for k in CORNERS if r % 2 == 0 else CORNERS[::-1]:
            times[k].append(steps[k]())
    return times


def corner_work_seconds(model: LoTLIP, tokens: torch.Tensor, reps: int) -> float:
    """Fastest of ``reps`` runs of the only work that grows with K at a fixed context, forward and backward.

    That is the mask, the final LayerNorm + projection of [CLS] and corners, normalisation and the multi-text
    loss over 1 + N(1+K) features; the transformer itself sees the same L tokens for any K. Short runs and the
    minimum make this immune to the machine load that swamps whole-step timings.
    """
    text, loss_fn, k = model.text, MultiTextClipLoss(), model.num_corner_tokens
    b, t, length = tokens.shape
    flat = tokens.reshape(b * t, length)
    hidden = torch.randn(b * t, length, text.width, requires_grad=True)
    image = F.normalize(torch.randn(b, model.text.output_dim), dim=-1)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        corner_attention_mask(text.valid_tokens(flat), k, text.corner_mask)
        feats = F.normalize(text._project(text.ln_final(hidden[:, : 1 + k])), dim=-1).view(b, t, 1 + k, -1)
        feats = torch.cat([feats[:, 0, :1], feats[:, 1:].reshape(b, -1, feats.shape[-1])], dim=1)
        loss_fn(image, feats, model.logit_scale.exp())["loss"].backward()
        best = min(best, time.perf_counter() - start)
    return best


def bench_corner_overhead(s: Settings) -> dict:
    """(a) Training steps with 0 and 2 corner tokens at a fully used context (paper Sec. 3.2)."""
    images = torch.randn(s.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    steps, flops, work = {}, {}, {}
    for k in CORNERS:
        torch.manual_seed(0)
        model = create_model(MODEL, num_corner_tokens=k, context_length=s.context).train()
        tokens = full_tokens(k, s.batch, 1 + s.n_long, s.context)
        steps[k] = step_fn(model, images, tokens)
        with flop_counter() as counter:  # the first warm-up step is counted
            steps[k]()
        flops[k] = counter.get_total_flops()
        for _ in range(s.warmup - 1):
            steps[k]()
        work[k] = corner_work_seconds(model, tokens, s.work_reps)
    times = interleaved_times(steps, s)
    return {"model": MODEL, "batch": s.batch, "texts_per_image": 1 + s.n_long, "context": s.context,
            "warmup_steps": s.warmup, "timed_rounds": len(times[0]),
            **{f"corners_{k}": _step_stats(times[k], flops[k], work[k], s.batch) for k in CORNERS},
            **_overheads(times, flops, work), "goal_pct": 3.0}


def _step_stats(times: list[float], flops: int, work_s: float, batch: int) -> dict:
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "samples_per_s": round(batch / statistics.median(times), 1), "step_gflops": round(flops / 1e9, 3),
            "corner_work_s": round(work_s, 5), "times_s": [round(t, 4) for t in times]}


def _overheads(times: dict[int, list[float]], flops: dict[int, int], work: dict[int, float]) -> dict:
    """Overhead of K=2 over K=0 four ways: paired step ratios (median, quartiles), fastest steps, FLOPs, work."""
    ratios = [c / b for b, c in zip(times[0], times[2], strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"overhead_pct": round(100 * (statistics.median(ratios) - 1), 2),
            "overhead_pct_quartiles": [round(100 * (q - 1), 2) for q in (quartiles[0], quartiles[2])],
            "overhead_pct_min_times": round(100 * (min(times[2]) / min(times[0]) - 1), 2),
            "flop_overhead_pct": round(100 * (flops[2] / flops[0] - 1), 3),
            "corner_work_overhead_pct": round(100 * (work[2] - work[0]) / min(times[0]), 3)}


def encode_times(model: LoTLIP, batches: dict[int, torch.Tensor], reps: int) -> dict[int, float]:
    """Fastest of ``reps`` ``encode_text`` calls per context, contexts taken round-robin so a burst of machine
    load hits them alike; one untimed warm-up round first."""
    times: dict[int, list[float]] = {length: [] for length in batches}
    with torch.no_grad():
        for rep in range(reps + 1):
            for length, tokens in batches.items():
                start = time.perf_counter()
                model.encode_text(tokens)
                if rep:
                    times[length].append(time.perf_counter() - start)
    return {length: min(t) for length, t in times.items()}


def bench_text_cost(s: Settings) -> dict:
    """(b) Text-encoder FLOPs per text and measured encode_text time at each context (Fig. 4; 2 corner tokens)."""
    torch.manual_seed(0)
    model = create_model(MODEL, num_corner_tokens=2, context_length=max(s.contexts)).eval()
    batches = {length: full_tokens(2, s.encode_batch, 1, length)[:, 0] for length in s.contexts}
    seconds = encode_times(model, batches, s.encode_reps)
    rows = [{"context": length, "gflops_per_text": round(count_flops(lambda t=t: model.encode_text(t[:1])) / 1e9, 4),
             "encode_batch": s.encode_batch, "encode_s": round(seconds[length], 4),
             "texts_per_s": round(s.encode_batch / seconds[length], 1)} for length, t in batches.items()]
    return {"model": MODEL, "corner_tokens": 2, "rows": rows}


def bench_context_steps(s: Settings) -> dict:
    """(c) Training-step time and FLOPs at each context (2 corners, fully used contexts), contexts round-robin."""
    images = torch.randn(s.context_batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    steps, flops = {}, {}
    for length in s.contexts:
        torch.manual_seed(0)
        model = create_model(MODEL, num_corner_tokens=2, context_length=length).train()
        steps[length] = step_fn(model, images, full_tokens(2, s.context_batch, 1 + s.n_long, length))
        with flop_counter() as counter:  # also the warm-up step
            steps[length]()
        flops[length] = counter.get_total_flops()
    times: dict[int, list[float]] = {length: [] for length in s.contexts}
    for r in range(s.context_rounds):
        for length in s.contexts if r % 2 == 0 else s.contexts[::-1]:
            times[length].append(steps[length]())
    base, base_min = statistics.median(times[s.contexts[0]]), min(times[s.contexts[0]])
    return {"model": MODEL, "corner_tokens": 2, "batch": s.context_batch, "texts_per_image": 1 + s.n_long,
            "rounds": s.context_rounds,
            "rows": [{"context": length, "step_median_s": round(statistics.median(t), 4),
                      "step_vs_first": round(statistics.median(t) / base, 2), "step_min_s": round(min(t), 4),
                      "step_min_vs_first": round(min(t) / base_min, 2),
                      "samples_per_s": round(s.context_batch / statistics.median(t), 1),
                      "step_gflops": round(flops[length] / 1e9, 2)} for length, t in times.items()]}


def bert_base_flops(contexts: tuple[int, ...]) -> dict:
    """FLOPs per text of the paper's text tower (BERT-base + pooler + 768x768 proj, 2 corners); random init."""
    cfg = {"hf_config": {}, "context_length": max(contexts), "hf_attn_implementation": "sdpa"}
    tower = build_hf_text_tower(cfg, 768, 2, True).eval()
    gen = torch.Generator().manual_seed(0)
    return {"model": "bert-base-uncased architecture (lotlip_bert-ViT-B-16 text tower)",
            "rows": [{"context": n, "gflops_per_text": round(count_flops(
                lambda n=n: tower(torch.randint(1000, 30000, (1, n), generator=gen))) / 1e9, 3)}
                for n in contexts]}


def main(argv: list[str] | None = None) -> int:
    """``python bench/model_bench.py [--quick] [--out DIR]``: figures 2 and 3 only, through ``python -m bench``."""
    from bench.run import main as run_main

    return run_main(["--only", "corners,context", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
