"""``lotlip <stage> ...``: the entry points the workflow rules call.

Each stage takes its slice of the validated config as JSON (``--cfg``), so Snakemake re-runs a stage exactly
when its own settings change. Errors (config and input errors, failed writes) become one line on stderr and exit
code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from lotlip.cli_paper import add_parsers as add_paper_parsers
from lotlip.cli_real import add_parsers as add_real_data_parsers
from lotlip.cli_report import add_parsers as add_report_parsers
from lotlip.config import ConfigError, load_config, run_config_from_dict, to_dict
from lotlip.io import describe_os_error, write_json, write_jsonl
from lotlip.train.launcher import LaunchError


def _cfg(text: str):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--cfg: not valid JSON ({exc.msg})") from None
    return load_config(data, origin="--cfg")


def cmd_world(args: argparse.Namespace) -> None:
    from lotlip.world.build import build_train_split

    cfg = _cfg(args.cfg)
    if cfg.world.source == "img2dataset":
        from lotlip.data.img2dataset import download_images

        sizes = download_images(cfg.world.img2dataset, cfg.world.img2dataset.url_list, args.out)
        logging.info("downloaded %d images in %d img2dataset shards to %s", sum(sizes.values()), len(sizes), args.out)
        return
    n = build_train_split(cfg.world, args.out)
    logging.info("wrote %d training scenes to %s", n, args.out)


def cmd_synthetic_benchmark(args: argparse.Namespace) -> None:
    from lotlip.world.build import build_benchmark

    cfg = _cfg(args.cfg)
    if args.name not in cfg.benchmarks:
        raise ConfigError(f"benchmarks: no benchmark named {args.name!r}")
    n = build_benchmark(cfg.benchmarks[args.name], cfg.world, args.out)
    logging.info("wrote benchmark %s (%d images) to %s", args.name, n, args.out)


def _world_images(world: Path, backend: str) -> list:
    """What relabeling sees of the training images: scenes, or (img2dataset) objects with a row ``key``."""
    from lotlip.data.img2dataset import image_keys, is_img2dataset_world
    from lotlip.world.build import load_scenes

    if is_img2dataset_world(world):
        if backend != "precomputed":
            raise ConfigError(f"relabel.backend: {backend!r} cannot caption {world} (img2dataset images, no scene "
                              "graphs); use precomputed")
        return [SimpleNamespace(key=key) for key in image_keys(world)]
    return load_scenes(world)


def cmd_relabel(args: argparse.Namespace) -> None:
    from lotlip.relabel import relabel_scenes

    cfg = _cfg(args.cfg).relabel
    options: dict = {}
    if cfg.backend == "hf":  # resumable: per-captioner progress survives a failed job beside the output
        options = {**to_dict(cfg.hf), "images_dir": args.world / "images",
                   "work_dir": args.out.with_name(args.out.name + ".work")}
    elif cfg.backend == "precomputed":
        options = to_dict(cfg.precomputed)
    images = _world_images(args.world, cfg.backend)
    records = list(relabel_scenes(cfg.backend, images, cfg.captioners, cfg.seed, **options))
    write_jsonl(args.out, records)
    logging.info("relabeled %d images with %s", len(records), ", ".join(cfg.captioners))


def cmd_shards(args: argparse.Namespace) -> None:
    from lotlip.data.shards import write_shards

    cfg = _cfg(args.cfg).shards
    counts = write_shards(args.world, args.captions, args.out, cfg.samples_per_shard)
    logging.info("wrote %d shards, %d samples", len(counts), sum(counts.values()))


def cmd_train(args: argparse.Namespace) -> None:
    from lotlip.train.launcher import launch_config, launch_train, sigterm_interrupts

    try:
        run = run_config_from_dict(json.loads(args.run))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--run: not valid JSON ({exc.msg})") from None
    launch = launch_config(args.launch)
    if args.executor:
        launch = dataclasses.replace(launch, executor=args.executor)
    with sigterm_interrupts():  # Snakemake stops a rule with SIGTERM: a submitted job is cancelled, not orphaned
        summary = launch_train(run, args.shards, args.out, launch, text_init=args.text_init)
    logging.info("trained %s: %s", run.name, summary)


def cmd_evaluate(args: argparse.Namespace) -> None:
    import torch

    from lotlip.eval.runner import evaluate_benchmark
    from lotlip.model.checkpoint import load_model
    from lotlip.provenance import provenance  # imports torch: not at the top (`lotlip snakemake` starts fast)

    if not len(args.name) == len(args.benchmark) == len(args.out):
        raise ConfigError(f"evaluate: {len(args.name)} --name, {len(args.benchmark)} --benchmark and "
                          f"{len(args.out)} --out values; one of each per benchmark expected")
    cfg = _cfg(args.cfg)
    torch.set_num_threads(cfg.train.threads)
    model, tokenizer, meta = load_model(args.checkpoint, device=cfg.train.device)
    run_cfg = meta.get("config") or {}
    seed = meta.get("seed")
    for name, bench_dir, out in zip(args.name, args.benchmark, args.out, strict=True):
        metrics = evaluate_benchmark(model, tokenizer, bench_dir, cfg.eval.batch_size)
        result = {"run": args.run, "benchmark": name, **metrics,
                  **provenance({"run": run_cfg, "eval": json.loads(args.cfg).get("eval", {})}, seed),
                  "checkpoint_commit": meta.get("commit")}
        write_json(out, result)
        logging.info("%s on %s: %s", args.run, name, metrics)


def cmd_report(args: argparse.Namespace) -> None:
    from lotlip.report.tables import build_table, write_table

    df = build_table(args.table, args.evals)
    write_table(df, args.out)
    logging.info("wrote %s (%d rows)", args.out, len(df))


def cmd_stats(args: argparse.Namespace) -> None:
    from lotlip.model import get_tokenizer
    from lotlip.report.stats import dataset_stats
    from lotlip.report.tables import write_table

    cfg = _cfg(args.cfg)
    tokenizer = get_tokenizer(cfg.train.model)
    df = dataset_stats(args.world, args.captions, args.benchmarks, tokenizer.count_tokens)
    write_table(df, args.out)
    logging.info("wrote %s (%d rows)", args.out, len(df))


def cmd_pull(args: argparse.Namespace) -> None:
    from lotlip.artifacts import pull

    result = pull(args.workdir, args.remote)
    for name in result["missing"]:
        print(f"lotlip pull: missing from the remote: {name} (snakemake will rebuild it)", file=sys.stderr)
    logging.info("restored the timestamps of %d Snakemake outputs", result["restored"])


def cmd_dvc_yaml(args: argparse.Namespace) -> None:
    from lotlip.artifacts import dvc_yaml
    from lotlip.io import write_text

    write_text(args.out, dvc_yaml(load_config(*args.configfiles)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lotlip", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("world", help="generate the synthetic training split")
    p.add_argument("--cfg", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("synthetic-benchmark",
                       help="generate a synthetic evaluation benchmark (long, short or zero-shot)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_synthetic_benchmark)

    p = sub.add_parser("relabel", help="write long captions for every training image")
    p.add_argument("--cfg", required=True)
    p.add_argument("--world", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_relabel)

    p = sub.add_parser("shards", help="write webdataset shards + sizes.json")
    p.add_argument("--cfg", required=True)
    p.add_argument("--world", required=True, type=Path)
    p.add_argument("--captions", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_shards)

    p = sub.add_parser("train", help="train one declared run")
    p.add_argument("--run", required=True, help="resolved run config as JSON")
    p.add_argument("--shards", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--launch", default="{}", help="where to run: config `launch` as JSON (default: this process)")
    p.add_argument("--executor", help="override launch.executor: inline, local, debug or slurm")
    p.add_argument("--text-init", type=Path, help="checkpoint whose text tower starts this run (experiment text_init)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on one or more benchmarks (one JSON each)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--name", required=True, nargs="+", help="benchmark names")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--benchmark", required=True, nargs="+", type=Path, help="benchmark folders, same order")
    p.add_argument("--out", required=True, nargs="+", type=Path, help="result JSONs, same order")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="build one results table from evaluation JSONs")
    p.add_argument("--table", required=True, help="table name, e.g. long_retrieval")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("evals", nargs="+", type=Path)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("stats", help="build results/table_dataset_stats.csv (Table 1/6 analog)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--world", required=True, type=Path)
    p.add_argument("--captions", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("benchmarks", nargs="*", type=Path)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("pull", help="dvc pull, then restore Snakemake's recorded output times")
    p.add_argument("--workdir", type=Path, default=Path("."))
    p.add_argument("--remote", default=None)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("dvc-yaml", help="write dvc.yaml naming the artifacts of a workflow config")
    p.add_argument("--out", type=Path, default=Path("dvc.yaml"))
    p.add_argument("configfiles", nargs="+", type=Path)
    p.set_defaults(func=cmd_dvc_yaml)

    p = sub.add_parser("check-config", help="validate config files (later files override earlier ones)")
    p.add_argument("files", nargs="+", type=Path)
    p.set_defaults(func=lambda a: print(json.dumps(load_config(*a.files) and "ok")))

    # listed for --help only: main() hands `lotlip snakemake ARGS` to lotlip.workflow before parsing
    sub.add_parser("snakemake", help="snakemake ARGS, but a missing or unreadable --configfile is one line "
                                     "(lotlip.workflow)", add_help=False)

    add_real_data_parsers(sub)  # fetch, fetch-model, import-benchmark, evaluate-model, benchmark, reference-table
    add_paper_parsers(sub)  # paper-table, figure, claims
    add_report_parsers(sub)  # landing, table-html
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; user errors print one line and return 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["snakemake"]:  # Snakemake's own command line (its options are not ours to parse)
        from lotlip.workflow import main as snakemake_main

        return snakemake_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError, ValueError, LaunchError) as exc:
        print(f"lotlip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a failed write (full disk, quota, read-only folder): `cannot write <file>: <cause>`
        message = describe_os_error(exc)
        if message is None:
            raise
        print(f"lotlip {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM to `lotlip train` (the job it submitted is cancelled)
        print(f"lotlip {args.command}: error: {exc or 'stopped by SIGINT'}", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
