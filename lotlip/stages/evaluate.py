"""Stage ``evaluate``: a trained checkpoint on several benchmarks, a released model on one benchmark, and any model
on named protocols (``lotlip benchmark``). Each writes result JSONs with provenance."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lotlip.config import ConfigError, LotlipConfig
from lotlip.io import write_json

if TYPE_CHECKING:
    from lotlip.model.sources import ModelSpec

log = logging.getLogger(__name__)


def check_lengths(names: Sequence[str], benchmarks: Sequence[Path], outs: Sequence[Path]) -> None:
    """One benchmark folder and one output per benchmark name, else a :class:`ConfigError`."""
    if not len(names) == len(benchmarks) == len(outs):
        raise ConfigError(f"evaluate: {len(names)} --name, {len(benchmarks)} --benchmark and "
                          f"{len(outs)} --out values; one of each per benchmark expected")


def evaluate_checkpoint(cfg: LotlipConfig, run: str, checkpoint: Path, names: Sequence[str],
                        benchmarks: Sequence[Path], outs: Sequence[Path],
                        recorded_eval: dict | None = None) -> list[dict]:
    """Evaluate our checkpoint on each benchmark (``names[i]`` in ``benchmarks[i]``), writing ``outs[i]``; returns
    the results. ``recorded_eval``: the eval settings recorded in the provenance (default: none)."""
    check_lengths(names, benchmarks, outs)
    import torch

    from lotlip.eval.runner import evaluate_benchmark
    from lotlip.model.checkpoint import load_model
    from lotlip.provenance import provenance

    torch.set_num_threads(cfg.train.threads)
    model, tokenizer, meta = load_model(checkpoint, device=cfg.train.device)
    config = {"run": meta.get("config") or {}, "eval": recorded_eval or {}}
    results = []
    for name, bench_dir, out in zip(names, benchmarks, outs, strict=True):
        metrics = evaluate_benchmark(model, tokenizer, bench_dir, cfg.eval.batch_size)
        result = {"run": run, "benchmark": name, **metrics, **provenance(config, meta.get("seed")),
                  "checkpoint_commit": meta.get("commit")}
        write_json(out, result)
        log.info("%s on %s: %s", run, name, metrics)
        results.append(result)
    return results


def evaluate_release(spec: ModelSpec, model_name: str, bench_name: str, benchmark: Path, out: Path,
                     batch_size: int = 256, device: str = "cpu", threads: int = 2, precision: str = "fp32") -> dict:
    """Evaluate a model as released (any kind :func:`lotlip.model.sources.load_for_eval` loads; weights at
    ``spec.path``) on one benchmark; writes and returns the result (with the weights' sha256)."""
    import torch

    from lotlip.data.download import sha256_file
    from lotlip.eval.harness import check_precision, evaluate_loaded
    from lotlip.model.sources import load_for_eval
    from lotlip.provenance import provenance

    torch.set_num_threads(threads)
    check_precision(precision, device)
    model, tokenizer = load_for_eval(spec, device=device)
    metrics = evaluate_loaded(model, tokenizer, benchmark, batch_size, precision, device)
    config = {"model": dataclasses.asdict(spec), "eval": {"batch_size": batch_size, "device": device,
                                                          "precision": precision}}
    result = {"run": model_name, "benchmark": bench_name, **metrics, **provenance(config, None),
              "weights_sha256": sha256_file(spec.path)}
    write_json(out, result)
    log.info("%s on %s: %s", model_name, bench_name, metrics)
    return result


def run_protocols(model: str, protocols: str | None, out: Path, benchmark_dirs: list[str] | None = None, *,
                  data_root: Path = Path("resources/data"), imagenet: Path | None = None, precision: str = "fp32",
                  batch_size: int = 256, device: str = "cpu", threads: int = 2, name: str | None = None,
                  check_count: bool = True, reference_config: Path | None = None) -> list[dict]:
    """``lotlip benchmark``: evaluate the model spec ``model`` on comma-separated ``protocols`` and ``NAME=DIR``
    benchmark folders; CLIP_benchmark JSONs and a merged ``results.csv`` in ``out``. Returns the results."""
    import torch

    from lotlip.eval.harness import parse_benchmark_dirs, run_benchmark

    torch.set_num_threads(threads)
    if not protocols and not benchmark_dirs:
        raise ValueError("--protocol or --benchmark-dir: name at least one set to evaluate on")
    results = run_benchmark(model, protocols, out, data_root, imagenet, precision, batch_size, device, name,
                            check_count, reference_config, parse_benchmark_dirs(benchmark_dirs))
    log.info("wrote %d result(s) and %s to %s", len(results), "results.csv", out)
    return results
