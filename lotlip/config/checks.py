"""Cross-field checks of a loaded config: ranges and choices, relations between sections, names, launch strings,
and :func:`check_config`, every whole-config check the workflow runs before planning.

Every failure is a one-line :class:`ConfigError` naming the full key.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from lotlip.catalog import SOURCES, CatalogError, load_catalog
from lotlip.config.runs import experiment_seeds, resolve_run
from lotlip.config.schema import (
    BENCHMARK_KINDS,
    CAPTIONERS,
    DEFAULT_TIER,
    RESERVED_TABLES,
    RESERVED_TIER_NAMES,
    TIER_NAME,
    BenchmarkConfig,
    ConfigError,
    LaunchConfig,
    LotlipConfig,
    ModelSourceConfig,
    RunConfig,
    TrainConfig,
)
from lotlip.constants import find_model_config


def check_ranges(obj: Any, path: str) -> None:
    """Check every dataclass field's declared ``min`` / ``max`` / ``choices`` (``ConfigError`` naming the field)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            check_ranges(value, f"{path}.{key}")
        return
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{path}.{f.name}".lstrip(".")
        meta = f.metadata
        if value is None or not meta:
            check_ranges(value, key)
            continue
        if meta.get("choices") is not None:
            allowed = meta["choices"]
            bad = [v for v in value if v not in allowed] if isinstance(value, list) else (
                [] if value in allowed else [value])
            if bad:
                raise ConfigError(f"{key}: {bad[0]!r} is not one of {', '.join(map(str, allowed))}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if meta.get("min") is not None and value < meta["min"]:
                raise ConfigError(f"{key}: {value} is below the minimum {meta['min']}")
            if meta.get("max") is not None and value > meta["max"]:
                raise ConfigError(f"{key}: {value} is above the maximum {meta['max']}")
        check_ranges(value, key)


def check_train(train: TrainConfig, key: str = "train") -> None:
    """Cross-field rules of a training config (precision vs device, accumulation vs batch)."""
    if train.precision == "amp" and not train.device.startswith("cuda"):
        raise ConfigError(f"{key}.precision: 'amp' (fp16 autocast + GradScaler) needs a CUDA device, not "
                          f"{train.device!r}; use bf16 or fp32")
    if train.batch_size % train.accum_steps:
        raise ConfigError(f"{key}.accum_steps: {train.accum_steps} does not divide {key}.batch_size "
                          f"{train.batch_size}")


def check_relations(cfg: LotlipConfig) -> None:
    """Rules between the fields and sections of a whole config, checked whenever one is loaded."""
    check_train(cfg.train)
    check_tier(cfg.tier)
    if cfg.snapshot and cfg.tier == DEFAULT_TIER:
        raise ConfigError("snapshot: only a named tier (a study, config/studies/<study>.yaml) writes a snapshot "
                          "under results/studies/<tier>/; set tier, or snapshot: false")
    if cfg.world.min_objects > cfg.world.max_objects:
        raise ConfigError(f"world.min_objects: {cfg.world.min_objects} exceeds world.max_objects "
                          f"{cfg.world.max_objects}")
    for name in cfg.relabel.captioners:
        if name not in CAPTIONERS:
            raise ConfigError(f"relabel.captioners: {name!r} is not one of {', '.join(CAPTIONERS)}")
    if not cfg.relabel.captioners:
        raise ConfigError("relabel.captioners: at least one captioner is required")
    if cfg.relabel.backend == "hf":
        missing = [c for c in cfg.relabel.captioners if c not in cfg.relabel.hf.models]
        if missing:
            raise ConfigError(f"relabel.hf.models: no model for captioner {missing[0]!r}")
    if cfg.world.source == "img2dataset":
        if not cfg.world.img2dataset.url_list:
            raise ConfigError("world.img2dataset.url_list: required when world.source is img2dataset")
    if cfg.relabel.backend == "precomputed" and not cfg.relabel.precomputed.path:
        raise ConfigError("relabel.precomputed.path: required by the precomputed backend")
    if find_model_config(cfg.train.model) is None:
        raise ConfigError(f"train.model: {cfg.train.model!r} is neither a bundled model config nor an existing "
                          f"JSON file")
    if not cfg.experiments:
        raise ConfigError("experiments: at least one run must be declared")
    for name in list(cfg.experiments) + list(cfg.benchmarks) + list(cfg.models):
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"experiments/benchmarks/models: name {name!r} may use only letters, digits, '_' "
                              f"and '-'")
    for name, bench in cfg.benchmarks.items():
        _check_benchmark(name, bench)
    for name, model in cfg.models.items():
        _check_model(name, model, cfg)
    _check_select(cfg)
    _check_reference(cfg)
    _check_experiments(cfg)
    _check_paper(cfg)
    check_launch_strings(cfg.launch)


SBATCH_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def check_launch_strings(launch: LaunchConfig) -> None:
    """Strings submitit writes into the Slurm job script's ``#SBATCH`` lines: a control character (a newline above
    all) would end the line and make the rest a script line bash runs; sbatch flag names must look like flag
    names. Refused whatever the executor, so a config is valid or not independently of where it runs."""
    values = {"log_folder": launch.log_folder, "partition": launch.partition, "account": launch.account,
              "qos": launch.qos, **{f"sbatch.{k}": v for k, v in launch.sbatch.items()}}
    for key in launch.sbatch:
        if not SBATCH_KEY.fullmatch(str(key)):
            raise ConfigError(f"launch.sbatch: flag name {str(key)!r} must be letters, digits, '_' or '-' "
                              f"(starting with a letter)")
    for key, value in values.items():
        if value is not None and any(unicodedata.category(c) == "Cc" for c in str(value)):  # C0, DEL, C1
            raise ConfigError(f"launch.{key}: {str(value)!r} contains a control character (newline, tab, ...)")


def _check_benchmark(name: str, bench: BenchmarkConfig) -> None:
    key = f"benchmarks.{name}"
    if bench.caption_facts and bench.kind != "short":
        raise ConfigError(f"{key}.caption_facts: only short sets take caption facts (kind is {bench.kind!r})")
    if bench.source == "synthetic":
        if bench.path is not None:
            raise ConfigError(f"{key}.path: only real sets take a path (source is synthetic)")
        return
    if bench.caption_facts:
        raise ConfigError(f"{key}.caption_facts: only synthetic sets take caption facts (source is "
                          f"{bench.source!r})")
    if bench.kind != SOURCES[bench.source].kind:
        raise ConfigError(f"{key}.kind: {bench.kind!r} does not match source {bench.source!r} "
                          f"({SOURCES[bench.source].kind})")
    needs_path = SOURCES[bench.source].needs_path
    if needs_path != bool(bench.path):
        raise ConfigError(f"{key}.path: " + ("required by" if needs_path else "not used by")
                          + f" source {bench.source!r}")


def _check_model(name: str, model: ModelSourceConfig, cfg: LotlipConfig) -> None:
    key = f"models.{name}"
    if name in cfg.experiments:
        raise ConfigError(f"{key}: the name is also a declared experiment (results/eval/{name}/ would clash)")
    if bool(model.url) == bool(model.path):
        raise ConfigError(f"{key}: set exactly one of url (downloaded) or path (a local weights file)")
    if model.kind == "lotlip" and model.arch:
        raise ConfigError(f"{key}.arch: not used by kind lotlip (the checkpoint names its model)")


def _check_select(cfg: LotlipConfig) -> None:
    for what, declared in (("benchmarks", cfg.benchmarks), ("experiments", cfg.experiments),
                           ("models", cfg.models)):
        chosen = getattr(cfg.select, what)
        unknown = [n for n in chosen or [] if n not in declared]
        if unknown:
            raise ConfigError(f"select.{what}: {unknown[0]!r} is not declared under {what} "
                              f"(declared: {', '.join(declared) or 'none'})")
    runs = list(cfg.experiments) if cfg.select.experiments is None else cfg.select.experiments
    models = list(cfg.models) if cfg.select.models is None else cfg.select.models
    if not runs and not models:
        raise ConfigError("select: nothing to evaluate (no experiment and no model selected)")
    _check_select_paper(cfg, set(runs) | set(models))
    for run in runs:  # a text tower starts from a run this tier trains (tiers share no checkpoint)
        source = cfg.experiments[run].text_init
        if source is not None and source in cfg.experiments and source not in runs:
            raise ConfigError(f"select.experiments: {run!r} starts its text tower from {source!r} (text_init), "
                              f"which is not selected")


def _check_select_paper(cfg: LotlipConfig, built: set[str]) -> None:
    """The paper tables, figures and claims a tier selects: declared, and each with the runs it needs built (a
    selected item the tier could not build is a mistake, not something to leave out quietly)."""
    for what, declared in (("paper_tables", cfg.paper.tables), ("paper_figures", cfg.paper.figures),
                           ("claims", cfg.paper.claims)):
        unknown = [n for n in getattr(cfg.select, what) or [] if n not in declared]
        if unknown:
            raise ConfigError(f"select.{what}: {unknown[0]!r} is not declared under paper."
                              f"{what.removeprefix('paper_')} (declared: {', '.join(declared) or 'none'})")
    for name in cfg.select.paper_tables or []:
        if not set(cfg.paper.tables[name].rows) & built:
            raise ConfigError(f"select.paper_tables: {name!r} has no row this tier builds (rows: "
                              f"{', '.join(cfg.paper.tables[name].rows)})")
    for name in cfg.select.paper_figures or []:
        fig = cfg.paper.figures[name]
        trained = [r for r in fig.runs if r in built and r in cfg.experiments]
        if len(trained) < (2 if fig.kind == "sweep" else 1):
            raise ConfigError(f"select.paper_figures: {name!r} needs " + ("two trained runs" if fig.kind == "sweep"
                              else "a trained run") + f" of {', '.join(fig.runs)}")
        benches = cfg.benchmarks if cfg.select.benchmarks is None else cfg.select.benchmarks
        if fig.kind == "maps" and fig.benchmark not in benches:
            raise ConfigError(f"select.paper_figures: {name!r} draws benchmark {fig.benchmark!r}, which is not "
                              f"selected")
    for name in cfg.select.claims or []:
        claim = cfg.paper.claims[name]
        unbuilt = [r for r in (claim.treatment, claim.control) if r not in built]
        if unbuilt:
            raise ConfigError(f"select.claims: {name!r} compares {unbuilt[0]!r}, which this tier does not build")


def _check_experiments(cfg: LotlipConfig) -> None:
    lists = [(cfg.seeds, "seeds")] + [(e.seeds, f"experiments.{n}.seeds") for n, e in cfg.experiments.items()]
    for seeds, key in lists:
        if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
            raise ConfigError(f"{key}: {seeds} must be a non-empty list of distinct seeds >= 0")
    for name, exp in cfg.experiments.items():
        key = f"experiments.{name}"
        unknown = [c for c in exp.captioners or [] if c not in cfg.relabel.captioners]
        if unknown:
            raise ConfigError(f"{key}.captioners: {unknown[0]!r} is not in relabel.captioners "
                              f"({', '.join(cfg.relabel.captioners)})")
        if exp.captioners is not None and not exp.captioners:
            raise ConfigError(f"{key}.captioners: empty list (use null for all captioners)")
        seen, cur = [name], exp.text_init
        while cur is not None:
            if cur not in cfg.experiments:
                raise ConfigError(f"{key}.text_init: {cur!r} is not a declared experiment")
            if cur in seen:
                raise ConfigError(f"{key}.text_init: cycle {' -> '.join(seen + [cur])}")
            seen.append(cur)
            cur = cfg.experiments[cur].text_init


def _check_paper(cfg: LotlipConfig) -> None:
    runs = set(cfg.experiments) | set(cfg.models)

    def need_run(run: str, key: str) -> None:
        if run not in runs:
            raise ConfigError(f"{key}: {run!r} is not a declared experiment or model")

    for name, table in cfg.paper.tables.items():
        key = f"paper.tables.{name}"
        if name in RESERVED_TABLES or name.endswith("_vs_reference") or not name.replace("_", "").isalnum():
            raise ConfigError(f"{key}: name is reserved or not letters, digits and '_' "
                              f"(reserved: {', '.join(RESERVED_TABLES)}, *_vs_reference)")
        if not table.rows:
            raise ConfigError(f"{key}.rows: at least one run is required")
        for run in table.rows:
            need_run(run, f"{key}.rows")
        for bench in table.benchmarks or []:
            if bench not in cfg.benchmarks:
                raise ConfigError(f"{key}.benchmarks: {bench!r} is not a declared benchmark")
        bad = [k for k in table.metrics if k not in BENCHMARK_KINDS]
        if bad:
            raise ConfigError(f"{key}.metrics: {bad[0]!r} is not a benchmark kind ({', '.join(BENCHMARK_KINDS)})")
    for name, fig in cfg.paper.figures.items():
        key = f"paper.figures.{name}"
        if not fig.runs:
            raise ConfigError(f"{key}.runs: at least one run is required")
        for run in fig.runs:
            if run not in cfg.experiments:
                raise ConfigError(f"{key}.runs: {run!r} is not a declared experiment")
        if fig.kind == "maps" and (fig.benchmark not in cfg.benchmarks or cfg.benchmarks[fig.benchmark].kind != "long"
                                   or cfg.benchmarks[fig.benchmark].source != "synthetic"):
            raise ConfigError(f"{key}.benchmark: {fig.benchmark!r} is not a declared synthetic long benchmark "
                              "(maps need its scene graphs)")
        if fig.flops and fig.x != "context_length":
            raise ConfigError(f"{key}.flops: only a context_length sweep has text-encoder FLOPs on its x axis")
    for name, claim in cfg.paper.claims.items():
        key = f"paper.claims.{name}"
        for role in ("treatment", "control"):
            need_run(getattr(claim, role), f"{key}.{role}")
        if claim.treatment == claim.control:
            raise ConfigError(f"{key}: treatment and control are the same run {claim.treatment!r}")


def _check_reference(cfg: LotlipConfig) -> None:
    ref = cfg.reference
    for run, benches in ref.values.items():
        if run not in cfg.experiments and run not in cfg.models:
            raise ConfigError(f"reference.values.{run}: not a declared experiment or model")
        for bench, numbers in benches.items():
            if bench not in cfg.benchmarks:
                raise ConfigError(f"reference.values.{run}.{bench}: not a declared benchmark")
            if len(numbers) != len(ref.metrics):
                raise ConfigError(f"reference.values.{run}.{bench}: {len(numbers)} numbers for "
                                  f"{len(ref.metrics)} metrics ({', '.join(ref.metrics)})")


def check_stages(cfg: LotlipConfig) -> None:
    """Relations between stages, checked on the whole workflow config (a stage's ``--cfg`` carries only its
    sections, the others at their defaults)."""
    if cfg.world.source == "img2dataset" and cfg.relabel.backend != "precomputed":
        raise ConfigError(f"relabel.backend: {cfg.relabel.backend!r} needs the synthetic world's scene graphs or "
                          "PNGs; with world.source img2dataset use precomputed (released long captions)")


def check_tier(tier: str) -> None:
    """A tier name: lower-case letters, digits and '_'; a non-default tier may not take a name the default tier
    writes at the top of results/, resources/ or logs/."""
    if not re.fullmatch(TIER_NAME, tier):
        raise ConfigError(f"tier: {tier!r} must be lower-case letters, digits and '_', starting with a letter")
    if tier != DEFAULT_TIER and tier in RESERVED_TIER_NAMES:
        raise ConfigError(f"tier: {tier!r} is a folder the default tier writes at the top of results/, resources/ "
                          f"or logs/ (reserved: {', '.join(RESERVED_TIER_NAMES)})")


def check_run(rc: RunConfig) -> None:
    """Contradictions of a run resolved from its experiment (:func:`lotlip.config.runs.resolve_run`)."""
    exp, key = rc.experiment, f"experiments.{rc.name}"
    if exp.method == "longclip" and exp.register_tokens:
        raise ConfigError(f"{key}.register_tokens: {exp.register_tokens} is not used by method longclip (set 0)")
    if exp.method == "longclip" and rc.sampling.n_subcaptions < 1:
        raise ConfigError(f"{key}.n_subcaptions: method longclip needs at least 1 long text")
    if exp.image_init is not None and not exp.image_init.strip():
        raise ConfigError(f"{key}.image_init: empty path (use null for a random image tower)")
    check_train(rc.train, f"{key} -> train")


# per loadable section: the key prefix of its fields and its own rules (run after the ranges)
SECTION_CHECKS: dict[type, tuple[str, Callable[[Any], None]]] = {
    LotlipConfig: ("", check_relations),
    RunConfig: ("", check_run),
    LaunchConfig: ("launch", check_launch_strings),
}


def check_section(obj: Any) -> None:
    """The checks a section passes when it is loaded: its fields' ranges and choices, then its own rules."""
    prefix, rules = SECTION_CHECKS.get(type(obj), ("", None))
    check_ranges(obj, prefix)
    if rules is not None:
        rules(obj)


def check_config(cfg: LotlipConfig) -> None:
    """Every whole-config check the workflow needs before planning, so that ``lotlip check-config`` refuses what
    the workflow would: the load-time checks, :func:`check_stages`, every experiment resolved with each of its
    seeds (:func:`check_run`: the rules that otherwise fire only when a rule's params are computed), and the
    catalog, which the planner reads for image inits."""
    check_section(cfg)
    check_stages(cfg)
    for name in cfg.experiments:
        for seed in experiment_seeds(cfg, name):
            check_run(resolve_run(cfg, name, seed))
    trained = list(cfg.experiments) if cfg.select.experiments is None else cfg.select.experiments
    if any(cfg.experiments[name].image_init for name in trained):
        try:
            load_catalog()  # the planner looks image inits up among the catalog's files
        except CatalogError as exc:
            raise ConfigError(f"experiments: image_init needs the dataset catalog: {exc}") from None
