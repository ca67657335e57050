"""Figure 1: training throughput of lotlip's trainer vs ``python -m open_clip_train.main``, side by side.

The same tiny model (``lotlip-tiny`` with no corner tokens, i.e. open_clip's CLIP with bidirectional text
attention and first-token pooling, built by open_clip from a ``local-dir:`` config), the same shards, batch size,
optimiser settings (AdamW 1e-3, wd 0.1, betas 0.9/0.98, eps 1e-6, 20 warm-up steps, fp32) and threads. Both
trainers run as fresh processes with an in-process loader (``--workers 0``; lotlip's loader has no worker
processes), in the order lotlip, open_clip, open_clip, lotlip (ABBA), so slow drifts of machine load hit both
alike. Throughput is samples / the summed wall time of whole loop iterations (data loading and logging included)
after the first ``skip`` (shuffle-buffer fill, allocator warm-up): open_clip_train logs each iteration's time;
lotlip's come from its TensorBoard event timestamps (log.csv's per-step times where there are none). One more
open_clip run with one loader worker process, and lotlip's multi-text step (raw + 3 long sub-captions, 2 corner
tokens), are reported beside it.

On the raw captions (5-7 tokens) lotlip trims each batch's padding while open_clip_train pads to 77, so that ratio
is mostly the trim. The equal-length comparison runs both trainers again, ABBA, on shards of the same images whose
raw captions fill the 77-token context (``bench.data.build_full_context_data``): both text towers then see 77 tokens
per caption and the ratio is the trainers' own (loader, step, logging).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bench.common import REPO
from bench.data import BenchData, raw_captions
from lotlip.config import load_config, run_config, to_dict

LAUNCHER = Path(__file__).resolve().parent / "openclip_launcher.py"
OC_STEP = re.compile(r"Batch \(t\): [\d.]+, ([\d.eE+-]+)/s,")


@dataclass(frozen=True)
class TrainSettings:
    """Sizes of figure 1."""

    steps: int = 16
    skip: int = 4  # first steps left out of the throughput
    batch: int = 128
    threads: int = 2
    rounds: int = 2  # ABBA pairs: 2 runs of each trainer
    full_context_rounds: int = 2  # the same on captions filling the 77-token context (0: not run)
    multi_steps: int = 8  # 0: no multi-text run
    openclip_worker_run: bool = False  # one extra open_clip run with --workers 1 (``--openclip-workers1``)


QUICK_TRAIN = TrainSettings(steps=3, skip=1, batch=16, threads=1, rounds=1, full_context_rounds=1, multi_steps=0,
                            openclip_worker_run=False)


def tiny_model_cfg(model: str = "lotlip-tiny") -> dict:
    """open_clip ``model_cfg`` of lotlip's model config without corner tokens (text: bidirectional, first token)."""
    cfg = json.loads((resources.files("lotlip") / "model_configs" / f"{model}.json").read_text())
    cfg.pop("lotlip", None)
    cfg["text_cfg"].update(no_causal_mask=True, pool_type="first")
    return cfg


def write_openclip_model_dir(folder: Path, model: str = "lotlip-tiny") -> Path:
    """``folder/open_clip_config.json`` for ``--model local-dir:folder`` (random init: no weights file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_model_cfg(model),
                                                              "preprocess_cfg": {}}, indent=2))
    return folder


def param_counts(model_dir: Path) -> dict[str, int]:
    """Parameter counts of both trainers' models (equal when the models are the same)."""
    import open_clip

    from lotlip.model import create_model

    ours = create_model("lotlip-tiny", num_corner_tokens=0)
    theirs = open_clip.create_model(f"local-dir:{model_dir}")
    return {"lotlip": sum(p.numel() for p in ours.parameters()),
            "open_clip": sum(p.numel() for p in theirs.parameters())}


def caption_tokens(data: BenchData) -> dict:
    """Token counts of the shards' raw captions with [SOT] and [EOT] (before truncation to 77): lotlip trims each
    batch to its longest, open_clip pads every caption to 77; ``at_least_77_pct``: captions filling the context."""
    from lotlip.model import get_tokenizer

    tokenizer = get_tokenizer("lotlip-tiny", num_corner_tokens=0)
    counts = sorted(tokenizer.count_tokens(raw) + 2 for raw in raw_captions(data.shard_dir))
    return {"median": counts[len(counts) // 2], "min": counts[0], "max": counts[-1], "open_clip_context": 77,
            "at_least_77_pct": round(100 * sum(c >= 77 for c in counts) / len(counts), 1)}


def _env(threads: int) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PATH": path,
            "PYTHONPATH": str(REPO)}


def _run(cmd: list[str], threads: int, log: Path) -> float:
    """Run ``cmd`` (stdout+stderr to ``log``); wall seconds; raises with the log's tail on failure."""
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_env(threads), cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n{log.read_text()[-3000:]}")
    return wall


def lotlip_run_json(method: str, s: TrainSettings, steps: int) -> str:
    """The resolved run config of declared experiment ``short`` or ``lotlip`` with the benchmark's sizes."""
    cfg = load_config({"train": {"steps": steps, "batch_size": s.batch, "lr": 1e-3, "weight_decay": 0.1,
                                 "warmup_steps": 20, "checkpoint_every": steps, "threads": s.threads, "seed": 0}})
    return json.dumps(to_dict(run_config(cfg, method)))


def run_lotlip(data: BenchData, work: Path, method: str, s: TrainSettings, steps: int) -> dict:
    """One ``python -m lotlip train`` process; per-step times from its ``log.csv``."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lotlip", "train", "--run", lotlip_run_json(method, s, steps),
           "--shards", str(data.shard_dir), "--out", str(work / "model.pt")]
    wall = _run(cmd, s.threads, work / "stdout.log")
    with open(work / "log.csv") as fh:
        step_s = [s.batch / float(r["samples_per_s"]) for r in csv.DictReader(fh)]
    source = "log.csv (data loading through loss read-back; the per-step log writes fall outside)"
    loop_s = tensorboard_iterations(work / "tensorboard")
    if loop_s and len(loop_s) == len(step_s) - 1:
        step_s, source = step_s[:1] + loop_s, "TensorBoard event times: whole loop iterations, as open_clip_train's"
    return {**_summary("lotlip", step_s, wall, s), "step_time_source": source}


def tensorboard_iterations(folder: Path, tag: str = "samples_per_s") -> list[float]:
    """Seconds between consecutive steps' ``tag`` events (steps 2..n): whole loop iterations, logging included.

    [] when the trainer wrote no TensorBoard log (then log.csv's per-step times are used).
    """
    if not folder.is_dir():
        return []
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return []
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return []
    events = sorted(acc.Scalars(tag), key=lambda e: e.step)
    return [b.wall_time - a.wall_time for a, b in zip(events, events[1:], strict=False)]


def run_openclip(data: BenchData, model_dir: Path, work: Path, s: TrainSettings, workers: int) -> dict:
    """One ``open_clip_train.main`` process (through the launcher); per-step times from its ``out.log``."""
    work.mkdir(parents=True, exist_ok=True)
    name = f"run-{time.time_ns()}"  # never reused: open_clip_train refuses an existing experiment
    cmd = [sys.executable, str(LAUNCHER), "--train-data", data.brace_pattern(), "--dataset-type", "webdataset",
           "--train-num-samples", str(s.steps * s.batch), "--model", f"local-dir:{model_dir}",
           "--batch-size", str(s.batch), "--workers", str(workers), "--epochs", "1", "--lr", "1e-3",
           "--wd", "0.1", "--warmup", "20", "--beta1", "0.9", "--beta2", "0.98", "--eps", "1e-6",
           "--precision", "fp32", "--seed", "0", "--log-every-n-steps", "1", "--save-frequency", "0",
           "--report-to", "", "--logs", str(work), "--name", name]
    wall = _run(cmd, s.threads, work / f"{name}.stdout.log")
    rates = [float(m.group(1)) for m in OC_STEP.finditer((work / name / "out.log").read_text())]
    if len(rates) != s.steps:
        raise RuntimeError(f"open_clip_train logged {len(rates)} steps, expected {s.steps} ({work / name})")
    return {**_summary("open_clip_train", [s.batch / r for r in rates], wall, s),
            "step_time_source": "out.log `Batch (t)` per step (whole loop iteration, data loading included)"}


def _summary(trainer: str, step_s: list[float], wall: float, s: TrainSettings) -> dict:
    kept = step_s[s.skip:] or step_s
    return {"trainer": trainer, "steps": len(step_s), "skipped": len(step_s) - len(kept),
            "samples_per_s": round(s.batch * len(kept) / sum(kept), 1),
            "first_steps_s": [round(t, 3) for t in step_s[: s.skip]],
            "steady_step_s": round(sum(kept) / len(kept), 4), "process_wall_s": round(wall, 1),
            "outside_steps_s": round(wall - sum(step_s), 1)}


def _pooled(runs: list[dict], batch: int) -> float:
    steps = sum(r["steps"] - r["skipped"] for r in runs)
    seconds = sum((r["steps"] - r["skipped"]) * r["steady_step_s"] for r in runs)
    return round(batch * steps / seconds, 1)


def _abba(data: BenchData, model_dir: Path, work: Path, s: TrainSettings, rounds: int, tag: str
          ) -> tuple[dict[str, list[dict]], list[str]]:
    """``rounds`` ABBA pairs of both trainers on ``data`` (lotlip: declared experiment ``short``)."""
    runs: dict[str, list[dict]] = {"lotlip": [], "open_clip_train": []}
    order = []
    for r in range(rounds):
        for trainer in ("lotlip", "open_clip_train") if r % 2 == 0 else ("open_clip_train", "lotlip"):
            order.append(trainer)
            if trainer == "lotlip":
                runs[trainer].append(run_lotlip(data, work / f"lotlip-{tag}-{r}", "short", s, s.steps))
            else:
                runs[trainer].append(run_openclip(data, model_dir, work / "openclip", s, workers=0))
    return runs, order


def _comparison(data: BenchData, model_dir: Path, work: Path, s: TrainSettings, rounds: int, tag: str) -> dict:
    runs, order = _abba(data, model_dir, work, s, rounds, tag)
    ours, theirs = _pooled(runs["lotlip"], s.batch), _pooled(runs["open_clip_train"], s.batch)
    return {"caption_tokens": caption_tokens(data), "order": order, "runs": runs, "lotlip_samples_per_s": ours,
            "open_clip_samples_per_s": theirs, "ratio": round(ours / theirs, 3)}


def bench_train(data: BenchData, work: Path, s: TrainSettings, full_data: BenchData | None = None) -> dict:
    """Figure 1: ABBA runs of both trainers on the raw captions, then on captions filling the 77-token context
    (``full_data``: equal text length, so the ratio is the trainers' own), then the extra runs."""
    model_dir = write_openclip_model_dir(work / "openclip_model")
    result = {"model": "lotlip-tiny, 0 corner tokens (open_clip CLIP, bidirectional text, first-token pool)",
              "params": param_counts(model_dir), "batch": s.batch, "threads": s.threads, "steps": s.steps,
              "skip": s.skip, **_comparison(data, model_dir, work, s, s.rounds, "short"), "goal_ratio": 1.0}
    ours = result["lotlip_samples_per_s"]
    result["full_context"] = None
    if full_data is not None and s.full_context_rounds:
        result["full_context"] = {**_comparison(full_data, model_dir, work, s, s.full_context_rounds, "full"),
                                  "goal_ratio": 1.0}
    if s.openclip_worker_run:
        extra = run_openclip(data, model_dir, work / "openclip", s, workers=1)
        result["open_clip_workers1"] = {**extra, "ratio_lotlip_over_it": round(ours / extra["samples_per_s"], 3)}
    result["lotlip_multitext"] = None
    if s.multi_steps:
        multi = run_lotlip(data, work / "lotlip-multi", "lotlip", s, s.multi_steps)
        result["lotlip_multitext"] = {**multi, "texts_per_image": 4, "corner_tokens": 2,
                                      "cost_vs_short": round(ours / multi["samples_per_s"], 2)}
    return result


def profile_lotlip(data: BenchData, work: Path, s: TrainSettings, steps: int = 6) -> list[dict]:
    """cProfile of lotlip's trainer (experiment ``short``) on ``data`` in this process (shown when a ratio misses
    its goal)."""
    from bench.common import cprofile_top
    from lotlip.config import run_config_from_dict
    from lotlip.train.loop import train

    run = run_config_from_dict(json.loads(lotlip_run_json("short", s, steps)))
    return cprofile_top(lambda: train(run, data.shard_dir, work / f"profile-{data.shard_dir.name}" / "model.pt"),
                        rows=15, sort="tottime")
