"""Model benchmarks: corner-token training overhead (paper Sec. 3.2) and text-encoder cost vs context (Fig. 4).

(a) Training-step time of ``lotlip-tiny`` with 0 vs 2 corner tokens at a fixed, fully used context (random token
    ids, no padding): steps of the two models are interleaved so machine load affects both alike; the overhead
    is the median of the paired step-time ratios (and, for reference, the ratio of the fastest steps and of the
    counted FLOPs).
(b) Text-encoder FLOPs per text at context 77/128/192/256 (``torch.utils.flop_counter.FlopCounterMode``; torch
    2.14.1 has no formula for the CPU flash-attention kernel, so one is registered here) and the measured
    ``encode_text`` time; also the FLOPs of the paper's BERT-base text tower (count only).

Usage: ``python bench/model_bench.py [--quick] [--out DIR]`` writes ``DIR/results.json`` and ``DIR/results.md``
(default ``DIR``: this folder). ``--quick`` is a seconds-long smoke run with tiny sizes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from lotlip.model import MultiTextClipLoss, create_model, get_tokenizer
from lotlip.model.attention_mask import corner_attention_mask
from lotlip.model.factory import LoTLIP
from lotlip.model.hf_text_tower import build_hf_text_tower
from lotlip.train.loop import text_features

HERE = Path(__file__).resolve().parent
MODEL = "lotlip-tiny"
CORNERS = (0, 2)


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run."""

    batch: int = 128
    n_long: int = 1  # long texts per image: tokens [B, 1 + n_long, context]
    context: int = 128
    warmup: int = 2
    rounds: int = 20
    min_rounds: int = 6
    budget_s: float = 90.0  # stop interleaving after this many seconds (once min_rounds are done)
    work_reps: int = 30
    contexts: tuple[int, ...] = (77, 128, 192, 256)
    encode_batch: int = 128
    encode_reps: int = 5
    bert_base: bool = True
    threads: int = 2


QUICK = Settings(batch=8, context=32, warmup=1, rounds=2, min_rounds=2, work_reps=2, contexts=(16, 32),
                 encode_batch=8, encode_reps=1, bert_base=False)


def _sdpa_forward(query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_backward(grad_out, query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also counts the CPU flash-attention kernels (missing in torch 2.14.1)."""
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_forward,
               aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def git_commit() -> str:
    """HEAD commit, with ``+dirty`` when tracked files differ from it ('unknown' outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(threads: int) -> dict:
    """Where and with what the numbers were measured."""
    cpu = platform.processor() or "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads,
            "python": platform.python_version(), "torch": torch.__version__, "open_clip": open_clip.__version__,
            "git_commit": git_commit(), "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def full_tokens(num_corners: int, batch: int, n_texts: int, context: int, seed: int = 0) -> torch.Tensor:
    """Token ids [B, T, L] with no padding: [SOT] [corners] random words [EOT] (so the context is really L)."""
    empty = get_tokenizer(MODEL, num_corner_tokens=num_corners, context_length=context)([""])[0]
    head, eot = empty[: 1 + num_corners], empty[1 + num_corners]
    gen = torch.Generator().manual_seed(seed)
    words = torch.randint(1, int(head[0]), (batch, n_texts, context - len(head) - 1), generator=gen)  # < SOT, EOT
    return torch.cat([head.expand(batch, n_texts, -1), words, eot.expand(batch, n_texts, 1)], dim=-1)


def step_fn(model: LoTLIP, images: torch.Tensor, tokens: torch.Tensor) -> Callable[[], float]:
    """A closure running one training step (forward, multi-text loss, backward, AdamW) and returning seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = MultiTextClipLoss()

    def step() -> float:
        start = time.perf_counter()
        image = model.encode_image(images, normalize=True)
        loss = loss_fn(image, text_features(model, tokens), model.logit_scale.exp())["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


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


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call (no gradient)."""
    with torch.no_grad(), flop_counter() as counter:
        fn()
    return counter.get_total_flops()


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


def bert_base_flops(contexts: tuple[int, ...]) -> dict:
    """FLOPs per text of the paper's text tower (BERT-base + pooler + 768x768 proj, 2 corners); random init."""
    cfg = {"hf_config": {}, "context_length": max(contexts), "hf_attn_implementation": "sdpa"}
    tower = build_hf_text_tower(cfg, 768, 2, True).eval()
    gen = torch.Generator().manual_seed(0)
    return {"model": "bert-base-uncased architecture (lotlip_bert-ViT-B-16 text tower)",
            "rows": [{"context": n, "gflops_per_text": round(count_flops(
                lambda n=n: tower(torch.randint(1000, 30000, (1, n), generator=gen))) / 1e9, 3)}
                for n in contexts]}


def to_markdown(results: dict) -> str:
    """The human-readable report."""
    m, a, b = results["machine"], results["corner_overhead"], results["text_cost"]
    lines = ["# Model benchmarks", "",
             f"- machine: {m['cpu']}, {m['cpu_count']} CPUs, torch threads {m['torch_threads']}; {m['platform']}",
             f"- python {m['python']}, torch {m['torch']}, open_clip {m['open_clip']}; commit {m['git_commit']}",
             f"- date {m['date']}; load average at start {m['load_average_start']}, at end {m['load_average_end']}",
             f"- mode: {results['mode']}, total {results['total_s']} s", "",
             f"## (a) Corner-token training overhead ({a['model']}, batch {a['batch']}, {a['texts_per_image']} "
             f"texts/image, context {a['context']} fully used, {a['warmup_steps']} warm-up + {a['timed_rounds']} "
             "interleaved timed steps)", "",
             "| corners | median step s | fastest step s | samples/s | step GFLOPs |", "|---|---|---|---|---|"]
    for k in CORNERS:
        r = a[f"corners_{k}"]
        lines.append(f"| {k} | {r['median_s']} | {r['min_s']} | {r['samples_per_s']} | {r['step_gflops']} |")
    q1, q3 = a["overhead_pct_quartiles"]
    lines += ["", f"Overhead of 2 corners: **{a['overhead_pct']} %** (median of paired step ratios, quartiles "
              f"{q1} .. {q3} %; goal <= {a['goal_pct']} %); fastest-step ratio {a['overhead_pct_min_times']} %; "
              f"FLOPs {a['flop_overhead_pct']} %; K-dependent work (mask, head, loss; fwd+bwd) "
              f"{a['corner_work_overhead_pct']} % of the fastest K=0 step "
              f"({a['corners_0']['corner_work_s']} vs {a['corners_2']['corner_work_s']} s).", "",
              f"## (b) Text encoder cost vs context ({b['model']}, {b['corner_tokens']} corners)", "",
              "| context | GFLOPs/text | encode_text s, fastest (batch) | texts/s |", "|---|---|---|---|"]
    lines += [f"| {r['context']} | {r['gflops_per_text']} | {r['encode_s']} ({r['encode_batch']}) | "
              f"{r['texts_per_s']} |" for r in b["rows"]]
    if results.get("bert_base"):
        lines += ["", f"Paper's text tower, {results['bert_base']['model']}: GFLOPs per text "
                  + ", ".join(f"{r['context']}: {r['gflops_per_text']}" for r in results["bert_base"]["rows"])]
    return "\n".join(lines) + "\n"


def run(s: Settings, mode: str) -> dict:
    """All benchmarks under one settings object."""
    torch.set_num_threads(s.threads)
    start = time.perf_counter()
    results = {"mode": mode, "settings": asdict(s), "machine": machine_info(s.threads)}
    results["corner_overhead"] = bench_corner_overhead(s)
    results["text_cost"] = bench_text_cost(s)
    results["bert_base"] = bert_base_flops(s.contexts) if s.bert_base else None
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_s"] = round(time.perf_counter() - start, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run with tiny sizes")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.json / results.md")
    args = parser.parse_args(argv)
    results = run(QUICK if args.quick else Settings(), "quick" if args.quick else "full")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(to_markdown(results))
    print(to_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
