"""``python -m bench``: every benchmark of issue #10 in one run; writes ``results.json`` and ``results.md``.

Figures: 1 training throughput vs open_clip_train (1b: captions filling the context), 2 corner-token overhead,
3 context-length cost, 4 hardware utilisation (4b: bf16 vs fp32), 5 input pipeline vs trainer, 6 evaluation
throughput and memory, 7 the Snakemake pipeline. ``--quick`` runs everything at toy sizes in about a minute (the
smoke test); ``--only`` runs some figures and merges them into the existing results file. A missed goal gets its
profile and a proposed fix in the file. Figure 8 (the paper's shapes on GPUs) is ``--gpu``, run on a GPU machine
(``bench/gpu_check.py``); results.md includes its ``gpu_results.json`` when that file is in the output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench import eval_bench, gpu_check, input_pipeline, model_bench, pipeline_bench, train_vs_openclip, utilisation
from bench.common import HERE, REPO, load_average, machine_info
from bench.data import BenchData, build_bench_data, build_full_context_data
from bench.report import goals, to_markdown
from lotlip.io import write_json, write_text

FIGURES = ("train", "corners", "context", "utilisation", "input", "eval", "pipeline")
PIPELINES = {"test": pipeline_bench.TEST_PIPELINE, "default": pipeline_bench.DEFAULT_PIPELINE,
             "quick": pipeline_bench.QUICK_PIPELINE}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every size of one run."""

    n_samples: int = 4000
    samples_per_shard: int = 1000
    threads: int = 2
    train: train_vs_openclip.TrainSettings = train_vs_openclip.TrainSettings()
    model: model_bench.Settings = model_bench.Settings()
    util: utilisation.UtilSettings = utilisation.UtilSettings()
    input: input_pipeline.InputSettings = input_pipeline.InputSettings()
    eval: eval_bench.EvalSettings = eval_bench.EvalSettings()
    pipeline: pipeline_bench.PipelineSettings = pipeline_bench.TEST_PIPELINE


QUICK_PLAN = Plan(n_samples=96, samples_per_shard=48, threads=1, train=train_vs_openclip.QUICK_TRAIN,
                  model=model_bench.QUICK, util=utilisation.QUICK_UTIL, input=input_pipeline.QUICK_INPUT,
                  eval=eval_bench.QUICK_EVAL, pipeline=pipeline_bench.QUICK_PIPELINE)


def _timed(results: dict, name: str, fn: Callable[[], dict]) -> None:
    """Run one figure; store its result with when, how long and under which load it ran."""
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    load, start = load_average(), time.perf_counter()
    section = fn()
    section["_run"] = {"seconds": round(time.perf_counter() - start, 1), "load_average_before": load,
                       "load_average_after": load_average()}
    results[name] = section
    print(f"[bench] {name} done in {section['_run']['seconds']} s", file=sys.stderr, flush=True)


def _missed_profiles(results: dict, plan: Plan, data: BenchData | None, full: BenchData | None, work: Path,
                     only: set[str]) -> None:
    """Profiles of figures whose goal was missed (utilisation and re-plan carry theirs already)."""
    train = results.get("train")
    if "train" in only and train and data and train["ratio"] < train["goal_ratio"]:
        train["profile"] = train_vs_openclip.profile_lotlip(data, work, plan.train)
    fc = (train or {}).get("full_context")
    if "train" in only and fc and full and fc["ratio"] < fc["goal_ratio"]:
        fc["profile"] = train_vs_openclip.profile_lotlip(full, work, plan.train)
    corners = results.get("corners")
    if "corners" in only and corners and corners["overhead_pct"] > corners["goal_pct"]:
        corners["profile"] = _corner_profiles(plan.model)
    inp = results.get("input")
    if "input" in only and inp and data and any(r.get("ratio", 99) < inp["goal_ratio"] for r in inp["loader"].values()):
        worst = min(inp["loader"], key=lambda k: inp["loader"][k].get("ratio", 99))
        inp["profile"] = {"config": worst, "top": input_pipeline.profile_loader(data, plan.input, worst)}


def _corner_profiles(s: model_bench.Settings) -> dict:
    images = torch.randn(s.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = {}
    for k in model_bench.CORNERS:
        torch.manual_seed(0)
        model = model_bench.create_model(model_bench.MODEL, num_corner_tokens=k, context_length=s.context).train()
        step = model_bench.step_fn(model, images, model_bench.full_tokens(k, s.batch, 1 + s.n_long, s.context))
        step()
        out[f"corners_{k}"] = utilisation.profile_step(step, 1, rows=8)
    return out


def _link_input_to_train(results: dict) -> None:
    """Figure 5's ratio: loader samples/s over the trainer's measured samples/s (figure 1's runs)."""
    inp, train = results.get("input"), results.get("train")
    if not inp or not train:
        return
    trainer = {"short": train["lotlip_samples_per_s"]}
    if train.get("lotlip_multitext"):
        trainer["multitext"] = train["lotlip_multitext"]["samples_per_s"]
    for name, row in inp["loader"].items():
        if name not in trainer:
            continue
        row["trainer_samples_per_s"] = trainer[name]
        row["ratio"] = round(row["samples_per_s"] / trainer[name], 2)
        row["loading_share_of_step_pct"] = round(100 * trainer[name] / row["samples_per_s"], 1)


def run(plan: Plan, mode: str, only: set[str], previous: dict | None, keep_work: bool, command: str) -> dict:
    """Run the chosen figures; ``previous`` results keep the figures not re-run."""
    torch.set_num_threads(plan.threads)
    start = time.perf_counter()
    results = dict(previous or {})
    results.update(mode=mode, command=command, plan=json.loads(json.dumps(dataclasses.asdict(plan))),
                   machine=machine_info(plan.threads), figures_run=sorted(only, key=FIGURES.index))
    work = Path(tempfile.mkdtemp(prefix="lotlip-bench-"))
    try:
        data = full = None
        if only & {"train", "input", "eval"}:
            t0 = time.perf_counter()
            data = build_bench_data(work / "data", plan.n_samples, plan.samples_per_shard)
            results["data"] = {"samples": data.n_samples, "shards": data.n_shards, "image_size": 32,
                               "build_s": round(time.perf_counter() - t0, 1),
                               "fields": "png + json (raw + 3 simulated MLLM long captions) + txt (raw)"}
            if "train" in only and plan.train.full_context_rounds:
                t0 = time.perf_counter()
                full = build_full_context_data(data, work / "data", plan.samples_per_shard)
                results["data"]["full_context"] = {
                    "shards": full.n_shards, "build_s": round(time.perf_counter() - t0, 1),
                    "raw": "the image's 3 long captions joined (repeated if needed) to >= 77 BPE tokens"}
        steps: list[tuple[str, Callable[[], dict]]] = [
            ("train", lambda: train_vs_openclip.bench_train(data, work / "train", plan.train, full)),
            ("corners", lambda: model_bench.bench_corner_overhead(plan.model)),
            ("context", lambda: {"steps": model_bench.bench_context_steps(plan.model),
                                 "text_encoder": model_bench.bench_text_cost(plan.model),
                                 "bert_base": model_bench.bert_base_flops(plan.model.contexts)
                                 if plan.model.bert_base else None}),
            ("utilisation", lambda: utilisation.bench_utilisation(plan.util)),
            ("input", lambda: input_pipeline.bench_input(data, plan.input)),
            ("eval", lambda: eval_bench.bench_eval(data, plan.eval)),
            ("pipeline", lambda: pipeline_bench.bench_pipeline(plan.pipeline)),
        ]
        for name, fn in steps:
            if name in only:
                torch.set_num_threads(plan.threads)
                _timed(results, name, fn)
        _link_input_to_train(results)
        if mode == "full":  # quick numbers are toys: their "misses" mean nothing
            _missed_profiles(results, plan, data, full, work, only)
    finally:
        if keep_work:
            print(f"[bench] work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = load_average()
    results["total_s"] = round(time.perf_counter() - start, 1)
    results["goals"] = goals(results)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes: a smoke run of about a minute")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for results.json / results.md, or gpu_results.* (default: bench/)")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated figures to run, merged into the existing results ({','.join(FIGURES)})")
    parser.add_argument("--pipeline", default=None, choices=sorted(PIPELINES),
                        help="figure 7's build: test (default; .test config, ~2 min), default (the embedded default "
                             "config: `snakemake all`, ~15-20 min) or quick")
    parser.add_argument("--pipeline-configfile", nargs="+", default=None,
                        help="figure 7: these config files (relative to the repo) instead of a preset")
    parser.add_argument("--pipeline-workdir", default=None, help="figure 7: build here (kept) instead of a temp folder")
    parser.add_argument("--openclip-workers1", action="store_true",
                        help="figure 1: one more open_clip_train run with a loader worker process (+1-2 min)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary data/run folder")
    gpu = parser.add_argument_group("GPU check (figure 8; writes gpu_results.json + gpu_results.md, nothing else)")
    gpu.add_argument("--gpu", action="store_true",
                     help="train the paper's shapes (lotlip_bert-ViT-B-16, 1 + 6 texts at context 128) on every local "
                          "CUDA GPU in amp and bf16 (DDP when more than one); exits 2 without CUDA")
    gpu.add_argument("--gpu-dry-run", action="store_true",
                     help="the same code on the CPU at toy size (lotlip_bert-tiny, batch 2, 1 step, fp32 + bf16); "
                          "--out defaults to a temporary folder")
    gpu.add_argument("--steps", type=int, default=None, help="GPU check: timed steps per precision (default 50)")
    gpu.add_argument("--batch-per-gpu", type=int, default=None, help="GPU check: batch per GPU (default 64)")
    gpu.add_argument("--gpu-model", default=None, help="GPU check: model config (default lotlip_bert-ViT-B-16)")
    gpu.add_argument("--gpu-precisions", default=None,
                     help="GPU check: comma-separated TrainStep precisions (default amp,bf16; dry run fp32,bf16)")
    gpu.add_argument("--gpu-ranks", type=int, default=None,
                     help="GPU check: number of ranks (default: every local GPU; dry run: 1, >1 spawns gloo ranks)")
    args = parser.parse_args(argv)
    if args.gpu and args.gpu_dry_run:
        parser.error("--gpu and --gpu-dry-run exclude each other")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    args = parse_args(argv)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.gpu or args.gpu_dry_run:
        return gpu_check.main(args, command.strip())
    args.out = args.out or HERE
    only = {f.strip() for f in args.only.split(",") if f.strip()}
    unknown = only - set(FIGURES)
    if unknown:
        print(f"python -m bench: unknown figure(s) {', '.join(sorted(unknown))}; choose from {', '.join(FIGURES)}",
              file=sys.stderr)
        return 2
    plan = QUICK_PLAN if args.quick else Plan()
    if args.pipeline:
        plan = dataclasses.replace(plan, pipeline=PIPELINES[args.pipeline])
    if args.pipeline_configfile:
        plan = dataclasses.replace(plan, pipeline=dataclasses.replace(
            plan.pipeline, configfiles=tuple(args.pipeline_configfile),
            label=f"config {' + '.join(args.pipeline_configfile)}"))
    if args.openclip_workers1:
        plan = dataclasses.replace(plan, train=dataclasses.replace(plan.train, openclip_worker_run=True))
    if args.pipeline_workdir:
        plan = dataclasses.replace(plan, pipeline=dataclasses.replace(plan.pipeline, workdir=args.pipeline_workdir))
    mode = "quick" if args.quick else "full"
    previous = None
    results_path = args.out / "results.json"
    if only != set(FIGURES) and results_path.is_file():
        previous = json.loads(results_path.read_text())
        if previous.get("mode") != mode:
            previous = None
    results = run(plan, mode, only, previous, args.keep_work, command.strip())
    gpu_path = args.out / "gpu_results.json"  # figure 8, measured separately by `python -m bench --gpu` on a GPU
    results.pop("gpu", None)
    if gpu_path.is_file():
        results["gpu"] = json.loads(gpu_path.read_text())
    results["goals"] = goals(results)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results_path, results)
    write_text(args.out / "results.md", to_markdown(results))
    print(f"[bench] wrote {results_path} and {args.out / 'results.md'} in {results['total_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
