"""Evaluate any model on named protocols (``lotlip benchmark``) and on one benchmark folder (``evaluate-model``).

Both go through :func:`evaluate_loaded`: the runner of :mod:`lotlip.eval.runner` with encoding under the chosen
precision (autocast, as the release evaluates; features and similarities in float32). ``lotlip benchmark``
checks everything before encoding: protocols and spec parsed, every protocol's files indexed (annotation files and
images found), the model loaded (a checkpoint of the wrong architecture fails here). Results are CLIP_benchmark's
JSON (one per model x protocol) plus a merged CSV of every result JSON in the output folder.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from lotlip.config import PRECISIONS
from lotlip.eval.model_spec import default_name, parse_model_spec
from lotlip.eval.protocols import EvalProtocol, resolve
from lotlip.eval.references import RUNNER_TO_CLIP_BENCHMARK, load_references
from lotlip.eval.runner import evaluate_benchmark

MERGED_CSV = "results.csv"
SPEED_SUFFIX = ".speed.json"  # beside each result: images/s, texts/s, precision, device, batch size
CLIP_BENCHMARK_METRICS = RUNNER_TO_CLIP_BENCHMARK  # I2T retrieves texts, T2I images
log = logging.getLogger(__name__)


def check_precision(precision: str, device: str) -> None:
    """One-line ``ValueError`` for an unknown precision or ``amp`` off CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: not one of {', '.join(PRECISIONS)}")
    if precision == "amp" and torch.device(device).type != "cuda":
        raise ValueError(f"--precision amp needs a CUDA device, not {device}; use bf16 or fp32")


class _Encoder(torch.nn.Module):
    """``model`` whose encoders run under ``precision``'s autocast, return float32 features and are timed
    (``module``: the model, so :func:`lotlip.model.transform.image_transform` finds its preprocessing)."""

    def __init__(self, model: torch.nn.Module, precision: str, device: str):
        super().__init__()
        self.module, self.precision, self.device_name = model, precision, device
        self.seconds = {"images": 0.0, "texts": 0.0}
        self.counts = {"images": 0, "texts": 0}

    @property
    def visual(self) -> torch.nn.Module:
        return self.module.visual

    def _run(self, what: str, fn: Any, x: torch.Tensor, normalize: bool) -> torch.Tensor:
        from lotlip.train.step import autocast

        cuda = torch.device(self.device_name).type == "cuda"
        start = time.perf_counter()
        with autocast(self.precision, self.device_name):
            out = fn(x, normalize=normalize).float()
        if cuda:
            torch.cuda.synchronize()
        self.seconds[what] += time.perf_counter() - start
        self.counts[what] += x.shape[0]
        return out

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self._run("images", self.module.encode_image, images, normalize)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self._run("texts", self.module.encode_text, tokens, normalize)

    def throughput(self) -> dict[str, float]:
        """Images/s and texts/s of the encoders' forward passes (decoding and tokenizing excluded)."""
        return {f"{what}_per_s": round(self.counts[what] / self.seconds[what], 1) if self.seconds[what] else 0.0
                for what in ("images", "texts")}


def evaluate_loaded(model: torch.nn.Module, tokenizer: Any, bench_dir: str | Path, batch_size: int = 256,
                    precision: str = "fp32", device: str = "cpu", speed: dict | None = None) -> dict:
    """Runner metrics (``kind``, ``i2t_r1``, ...) of a loaded model on a benchmark folder, at ``precision``;
    ``speed``, when given, receives ``images_per_s`` and ``texts_per_s``."""
    check_precision(precision, device)
    encoder = _Encoder(model, precision, device)
    metrics = evaluate_benchmark(encoder, tokenizer, bench_dir, batch_size)
    if speed is not None:
        speed.update(encoder.throughput())
    return metrics


# --- model specs -----------------------------------------------------------------------------------------

def _open_clip_tag(arch: str, tag: str) -> tuple[str, dict] | None:
    """``(local file, pretrained cfg)`` of an open_clip pretrained tag of ``arch`` (downloaded), else ``None``."""
    import open_clip
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    if arch not in open_clip.list_models() or tag not in open_clip.list_pretrained_tags_by_model(arch):
        return None
    cfg = get_pretrained_cfg(arch, tag)
    if cfg.get("quick_gelu") and "quickgelu" not in arch.lower():
        return "", cfg  # refused by the caller before any download
    return download_pretrained(cfg), cfg


def load_model_spec(text: str, device: str = "cpu") -> tuple[torch.nn.Module, Any, dict[str, str]]:
    """``(model, tokenizer, spec dict)`` of a compact spec; ``spec["pretrained"]``: the tag or weights file."""
    from open_clip.model import get_model_preprocess_cfg, set_model_preprocess_cfg
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    from lotlip.model.sources import ModelSpec, load_for_eval

    spec = parse_model_spec(text)
    pretrained, tag_cfg = spec["path"], None
    if not Path(spec["path"]).is_file():
        found = _open_clip_tag(spec["arch"], spec["path"]) if spec["kind"] == "openclip" else None
        if found is None:
            raise FileNotFoundError(f"--model {text!r}: {spec['path']}: weights file not found"
                                    + (f" (nor an open_clip pretrained tag of {spec['arch']})"
                                       if spec["kind"] == "openclip" else ""))
        if found[1].get("quick_gelu") and "quickgelu" not in spec["arch"].lower():
            raise ValueError(f"--model {text!r}: tag {spec['path']} was trained with QuickGELU; use "
                             f"openclip:{spec['arch']}-quickgelu@{spec['path']}")
        spec = {**spec, "path": found[0]}
        tag_cfg = found[1]
    model, tokenizer = load_for_eval(ModelSpec(spec["kind"], spec["path"], spec["arch"]), device=device)
    if tag_cfg is not None:  # the tag's own mean/std/interpolation, as open_clip applies them
        merged = merge_preprocess_dict(PreprocessCfg(), get_model_preprocess_cfg(model))
        set_model_preprocess_cfg(model, merge_preprocess_dict(merged, tag_cfg))
    return model, tokenizer, {**spec, "pretrained": pretrained}


# --- results ---------------------------------------------------------------------------------------------

def clip_benchmark_result(dataset: str, task: str, metrics: dict, model: str, pretrained: str) -> dict:
    """CLIP_benchmark's result JSON for runner ``metrics`` on ``dataset`` (``task``: CLIP_benchmark's name)."""
    values = {CLIP_BENCHMARK_METRICS[k]: v for k, v in metrics.items() if k in CLIP_BENCHMARK_METRICS}
    return {"dataset": dataset, "model": model, "pretrained": pretrained, "task": task, "metrics": values,
            "language": "en"}


def _with_reference(df: Any, reference: dict) -> Any:
    """``df`` with ``<metric>_ref`` / ``_diff`` for rows whose ``name`` is a reference model, and ``ref_source``."""
    import pandas as pd

    from lotlip.report.reference import with_reference

    for metric in reference["metrics"]:
        if metric not in df.columns:
            df[metric] = float("nan")
    out = with_reference(df.rename(columns={"name": "run", "dataset": "benchmark"}), reference["values"],
                         reference["metrics"]).rename(columns={"run": "name", "benchmark": "dataset"})
    has_ref = pd.concat([out[f"{m}_ref"].notna() for m in reference["metrics"]], axis=1).any(axis=1)
    out["ref_source"] = [reference["source"] if hit else "" for hit in has_ref]
    return out


def write_merged_csv(out_dir: Path, reference: dict | None = None) -> Path:
    """``out_dir/results.csv``: one row per result JSON in ``out_dir`` (``name``: its file name's model part);
    with ``reference`` (:func:`lotlip.eval.references.load_references`) the published numbers beside ours."""
    import pandas as pd

    rows = []
    for path in sorted(out_dir.glob("*__*.json")):
        if path.name.endswith(SPEED_SUFFIX):
            continue
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            continue
        speed_file = path.with_name(path.stem + SPEED_SUFFIX)
        speed = json.loads(speed_file.read_text()) if speed_file.is_file() else {}
        rows.append({"name": path.stem.rsplit("__", 1)[0], "model": data["model"], "pretrained": data["pretrained"],
                     "dataset": data["dataset"], "task": data["task"], **data["metrics"], **speed})
    df = pd.DataFrame(rows)
    if reference is not None and not df.empty:
        df = _with_reference(df, reference)
    out = out_dir / MERGED_CSV
    df.to_csv(out, index=False)
    return out


def import_protocols(protocols: list[EvalProtocol], data_root: Path, work: Path, imagenet: Path | None,
                     check_count: bool = True) -> dict[str, Path]:
    """Index every protocol's files into a benchmark folder under ``work`` (fails before any encoding)."""
    from lotlip.data.import_real import import_benchmark

    folders = {}
    for p in protocols:
        path = (imagenet or data_root / "imagenet" / "val") if p.source == "imagenet" else None
        folders[p.name] = work / p.name
        meta = import_benchmark(p.source, data_root, folders[p.name], path, check_count=check_count)
        log.info("protocol %s: %d images indexed", p.name, meta["n_images"])
    return folders


def parse_benchmark_dirs(items: list[str] | None) -> dict[str, Path]:
    """``NAME=DIR`` items (benchmark folders, e.g. the synthetic ``resources/benchmarks/dci_syn``) as a mapping."""
    dirs: dict[str, Path] = {}
    for item in items or []:
        key, eq, path = item.partition("=")
        if not eq or not key or not path:
            raise ValueError(f"--benchmark-dir {item!r}: expected NAME=DIR")
        dirs[key] = Path(path)
    return dirs


def check_benchmark_dir(name: str, folder: Path) -> str:
    """CLIP_benchmark task of a benchmark folder whose metadata and images are all present (else one line)."""
    from lotlip.eval.retrieval import image_paths
    from lotlip.eval.runner import bench_meta
    from lotlip.io import read_jsonl

    if not (folder / "texts.jsonl").is_file():
        raise FileNotFoundError(f"--benchmark-dir {name}: {folder / 'texts.jsonl'} not found")
    kind = bench_meta(folder)["kind"]
    image_paths(folder, read_jsonl(folder / "texts.jsonl"))
    return "zeroshot_classification" if kind == "zeroshot" else "zeroshot_retrieval"


def run_benchmark(model: str, protocols: str | None, out: str | Path, data_root: str | Path = "resources/data",
                  imagenet: str | Path | None = None, precision: str = "fp32", batch_size: int = 256,
                  device: str = "cpu", name: str | None = None, check_count: bool = True,
                  reference_config: str | Path | None = None,
                  benchmark_dirs: dict[str, Path] | None = None) -> list[dict]:
    """Evaluate ``model`` (a compact spec) on comma-separated ``protocols`` and on ready ``benchmark_dirs``
    (name -> folder); writes ``out/<name>__<dataset>.json`` and ``out/results.csv`` (with reference columns from
    ``reference_config``); returns the result JSONs."""
    benchmark_dirs = benchmark_dirs or {}
    chosen = resolve(protocols) if protocols or not benchmark_dirs else []
    clash = sorted(set(benchmark_dirs) & {p.name for p in chosen})
    if clash:
        raise ValueError(f"--benchmark-dir {clash[0]}: also named by --protocol")
    reference = load_references(reference_config) if reference_config else None
    spec = parse_model_spec(model)
    check_precision(precision, device)
    out = Path(out)
    name = name or default_name(spec)
    tasks = {key: check_benchmark_dir(key, folder) for key, folder in benchmark_dirs.items()}
    folders = import_protocols(chosen, Path(data_root), out / "benchmarks", None if imagenet is None
                               else Path(imagenet), check_count)
    tasks |= {p.name: p.clip_benchmark_task for p in chosen}
    folders |= benchmark_dirs
    loaded, tokenizer, resolved = load_model_spec(model, device)
    arch = resolved["arch"] or resolved["kind"]
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for dataset, folder in folders.items():
        speed: dict = {}
        metrics = evaluate_loaded(loaded, tokenizer, folder, batch_size, precision, device, speed)
        result = clip_benchmark_result(dataset, tasks[dataset], metrics, arch, resolved["pretrained"])
        (out / f"{name}__{dataset}.json").write_text(json.dumps(result, indent=2) + "\n")
        speed |= {"precision": precision, "device": device, "batch_size": batch_size}
        (out / f"{name}__{dataset}{SPEED_SUFFIX}").write_text(json.dumps(speed, indent=2) + "\n")
        log.info("%s on %s: %s (%s images/s, %s texts/s)", name, dataset, result["metrics"], speed["images_per_s"],
                 speed["texts_per_s"])
        results.append(result)
    write_merged_csv(out, reference)
    return results
