"""What the workflow builds for a validated config: selected benchmarks, trained runs, evaluated models, and
the inputs and arguments of the fetch / import / release-evaluation rules.

Import-light (the Snakefile reads it at parse time): no torch.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from lotlip.catalog import SOURCES, load_catalog
from lotlip.config import DEFAULT_TIER, check_config, experiment_seeds, run_config
from lotlip.constants import get_model_config, train_context_length

# Downloads are shared by every tier of a checkout: the catalog fixes what each name holds (checksummed).
DATA_ROOT = "resources/data"
FETCHED = DATA_ROOT + "/.fetched/{dataset}.json"
MODELS_DIR = "resources/models"


@dataclass(frozen=True)
class TierPaths:
    """The roots a tier writes under: the default tier at the top of ``results/``, ``resources/``, ``logs/``
    (so ``snakemake results/table_long_retrieval.csv`` builds the default's table), any other tier under
    ``results/<tier>/``, ``resources/<tier>/``, ``logs/<tier>/`` (config ``tier``). Tiers never share an output,
    so they coexist in one checkout and DVC versions each."""

    results: str
    resources: str
    logs: str

    @property
    def checkpoint(self) -> str:
        """Template of a trained run's final checkpoint (``run``, ``seed``)."""
        return self.results + "/checkpoints/{run}/seed{seed}/model.pt"

    @property
    def trained_eval(self) -> str:
        """Template of a trained run's evaluation JSON (``run``, ``seed``, ``bench``)."""
        return self.results + "/eval/{run}/seed{seed}/{bench}.json"

    @property
    def model_eval(self) -> str:
        """Template of a released model's evaluation JSON (``model``, ``bench``)."""
        return self.results + "/eval/{model}/{bench}.json"


def tier_paths(cfg: Any) -> TierPaths:
    """Where ``cfg``'s tier writes (see :class:`TierPaths`)."""
    if cfg.tier == DEFAULT_TIER:
        return TierPaths("results", "resources", "logs")
    return TierPaths(f"results/{cfg.tier}", f"resources/{cfg.tier}", f"logs/{cfg.tier}")


def alternation(names: Iterable[str]) -> str:
    """A regex matching exactly one of ``names`` (and nothing when there are none)."""
    names = sorted(names)
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def _chosen(declared: Iterable[str], chosen: list[str] | None) -> list[str]:
    return sorted(declared) if chosen is None else sorted(chosen)


def _select(cfg: Any, what: str) -> list[str] | None:
    return getattr(cfg.select, what)


def benchmarks(cfg: Any) -> list[str]:
    """Benchmarks this tier builds and evaluates."""
    return _chosen(cfg.benchmarks, _select(cfg, "benchmarks"))


def trained_runs(cfg: Any) -> list[str]:
    """Declared experiments this tier trains (and evaluates)."""
    return _chosen(cfg.experiments, _select(cfg, "experiments"))


def text_init_checkpoint(cfg: Any, run: str, seed: int) -> list[str]:
    """The checkpoint whose text tower starts ``run`` (same seed when the source has it), or []."""
    source = cfg.experiments[run].text_init
    if source is None:
        return []
    seeds = experiment_seeds(cfg, source)
    return [tier_paths(cfg).checkpoint.format(run=source, seed=seed if seed in seeds else seeds[0])]


def eval_files(cfg: Any, runs: Iterable[str], benches: Iterable[str]) -> list[str]:
    """Evaluation JSONs of ``runs`` (trained: one per seed; released models: one) on ``benches``."""
    benches = list(benches)
    paths = tier_paths(cfg)
    out = []
    for run in runs:
        if run in cfg.experiments and run not in cfg.models:
            out += [paths.trained_eval.format(run=run, seed=s, bench=b)
                    for s in experiment_seeds(cfg, run) for b in benches]
        else:
            out += [paths.model_eval.format(model=run, bench=b) for b in benches]
    return out


def eval_models(cfg: Any) -> list[str]:
    """Models evaluated as released (no training)."""
    return _chosen(cfg.models, _select(cfg, "models"))


def source(cfg: Any, bench: str) -> str:
    """``synthetic`` or the real set a benchmark imports."""
    return cfg.benchmarks[bench].source


def synthetic_benchmarks(cfg: Any) -> list[str]:
    return [b for b in benchmarks(cfg) if source(cfg, b) == "synthetic"]


def real_benchmarks(cfg: Any) -> list[str]:
    return [b for b in benchmarks(cfg) if source(cfg, b) != "synthetic"]


def fetch_markers(cfg: Any, bench: str) -> list[str]:
    """Marker files of the catalog datasets a real benchmark's import reads."""
    return [FETCHED.format(dataset=d) for d in SOURCES[source(cfg, bench)].datasets]


def world_settings(cfg: Any) -> dict:
    """The ``world`` settings the training images depend on: the synthetic generator's, or img2dataset's.

    The rules' params carry only these, so a download setting never rebuilds the synthetic world (and the
    synthetic world's params read as they did before ``world.source`` existed).
    """
    from dataclasses import asdict

    world = asdict(cfg.world)
    if world.pop("source") == "synthetic":
        world.pop("img2dataset")
        return world
    return {"source": "img2dataset", "img2dataset": world["img2dataset"]}


def world_inputs(cfg: Any) -> list[str]:
    """Marker of the catalog dataset holding the url list of img2dataset training images (none for synthetic)."""
    world = cfg.world
    if world.source != "img2dataset" or not world.img2dataset.dataset or not trained_runs(cfg):
        return []
    return [FETCHED.format(dataset=world.img2dataset.dataset)]


@functools.cache
def _catalog_files() -> dict[str, str]:
    """``resources/data/<dest>`` of every plain catalog file -> its dataset (weights such as the in21k ViT); read
    once per process (the Snakefile asks for every train job)."""
    return {f"{DATA_ROOT}/{spec['dest']}": name for name, entry in load_catalog().items()
            for spec in entry.get("files") or [] if "dest" in spec}


def _catalog_dataset(path: str) -> str | None:
    """The catalog dataset whose plain file ``path`` is, or ``None`` (a local file)."""
    return _catalog_files().get(str(PurePosixPath(path)))


def image_init_inputs(cfg: Any, run: str) -> list[str]:
    """What a run's ``image_init`` needs: the fetch marker of the catalog dataset holding that file (e.g. timm's
    in21k ViT weights), else the file itself (a local checkpoint); [] when the image tower starts at random."""
    path = cfg.experiments[run].image_init
    if not path:
        return []
    dataset = _catalog_dataset(path)
    return [FETCHED.format(dataset=dataset)] if dataset else [path]


def fetched_datasets(cfg: Any) -> list[str]:
    """Every catalog dataset the selected real benchmarks, the training images and image inits need."""
    needed = {d for b in real_benchmarks(cfg) for d in SOURCES[source(cfg, b)].datasets}
    if world_inputs(cfg):
        needed.add(cfg.world.img2dataset.dataset)
    inits = {cfg.experiments[r].image_init for r in trained_runs(cfg)} - {None}
    needed |= {d for d in map(_catalog_dataset, inits) if d}
    return sorted(needed)


def import_args(cfg: Any, bench: str) -> str:
    """Shell-quoted ``lotlip import-benchmark`` arguments of a real benchmark (data root and output excluded)."""
    spec = cfg.benchmarks[bench]
    args = ["--source", spec.source]
    if spec.path:
        args += ["--path", spec.path]
    if not spec.check_count:
        args.append("--no-check-count")
    return shlex.join(args)


def model_weights(cfg: Any, model: str) -> str:
    """The weights file of a model: downloaded under ``resources/models/<model>/`` or its local ``path``."""
    spec = cfg.models[model]
    if spec.url:
        return f"{MODELS_DIR}/{model}/{PurePosixPath(spec.url.split('?')[0]).name}"
    return spec.path


def downloaded_models(cfg: Any) -> list[str]:
    """Selected models whose weights are downloaded from a url."""
    return [m for m in eval_models(cfg) if cfg.models[m].url]


def model_spec_json(cfg: Any, model: str) -> str:
    """The loader spec of a model (kind, arch, context length) as JSON; the weights path comes separately."""
    spec = cfg.models[model]
    return json.dumps({"kind": spec.kind, "arch": spec.arch, "context_length": spec.context_length}, sort_keys=True)


def eval_args(cfg: Any) -> str:
    """Shell-quoted evaluation settings shared by every evaluate-model job."""
    return shlex.join(["--batch-size", str(cfg.eval.batch_size), "--device", cfg.train.device,
                       "--threads", str(cfg.train.threads)])


def reference_json(cfg: Any) -> str:
    """The reference numbers (source, metrics, values) as JSON."""
    ref = cfg.reference
    return json.dumps({"source": ref.source, "metrics": list(ref.metrics),
                       "values": {r: {b: list(v) for b, v in bs.items()} for r, bs in ref.values.items()}},
                      sort_keys=True)


def reference_tables(cfg: Any, tables: dict[str, Any]) -> list[str]:
    """Tables (name -> ``TableSpec``) showing the reference metrics of an evaluated, referenced (run, benchmark)."""
    ref = cfg.reference
    runs = set(trained_runs(cfg)) | set(eval_models(cfg))
    out = []
    for name, spec in tables.items():
        if not set(ref.metrics) <= set(spec.metrics):
            continue
        benches = {b for b in benchmarks(cfg) if cfg.benchmarks[b].kind in spec.kinds}
        if any(r in runs and b in benches for r, bs in ref.values.items() for b in bs):
            out.append(name)
    return out


# --- paper tables, figures and claims -------------------------------------------------------------------


def built_runs(cfg: Any) -> list[str]:
    """Runs with evaluation results in this tier: trained experiments and released models."""
    return trained_runs(cfg) + eval_models(cfg)


def paper_table_kinds(cfg: Any, name: str) -> dict[str, str]:
    """Column benchmarks of a paper table (in order) -> kind: selected, declared and with metric columns."""
    spec = cfg.paper.tables[name]
    selected = set(benchmarks(cfg))
    if spec.benchmarks is not None:
        order = list(spec.benchmarks)
    else:  # as the paper: long-text sets, then short retrieval, then zero-shot, each in declaration order
        kinds = ("long", "short", "zeroshot")
        order = sorted(cfg.benchmarks, key=lambda b: kinds.index(cfg.benchmarks[b].kind))
    return {b: cfg.benchmarks[b].kind for b in order
            if b in selected and spec.metrics.get(cfg.benchmarks[b].kind)}


def paper_table_rows(cfg: Any, name: str) -> dict[str, str]:
    """Rows (run -> label) of a paper table that this tier builds."""
    built = set(built_runs(cfg))
    return {r: label for r, label in cfg.paper.tables[name].rows.items() if r in built}


def _wanted(cfg: Any, what: str, name: str) -> bool:
    """``name`` is among the paper items ``select.<what>`` names (null: every declared one)."""
    chosen = _select(cfg, what)
    return chosen is None or name in chosen


def paper_tables(cfg: Any) -> list[str]:
    """Paper tables (those ``select.paper_tables`` names, null: all) with at least one built row and one column."""
    return [n for n in cfg.paper.tables
            if _wanted(cfg, "paper_tables", n) and paper_table_rows(cfg, n) and paper_table_kinds(cfg, n)]


def figure_runs(cfg: Any, name: str) -> list[str]:
    """Runs of a figure that this tier trains."""
    trained = set(trained_runs(cfg))
    return [r for r in cfg.paper.figures[name].runs if r in trained]


def paper_figures(cfg: Any) -> list[str]:
    """Figures this tier can draw: a sweep needs two trained runs, maps one (and a selected benchmark)."""
    out = []
    for name, fig in cfg.paper.figures.items():
        if not _wanted(cfg, "paper_figures", name):
            continue
        runs = figure_runs(cfg, name)
        if fig.kind == "sweep" and len(runs) >= 2:
            out.append(name)
        elif fig.kind == "maps" and runs and fig.benchmark in benchmarks(cfg):
            out.append(name)
    return out


def checked_claims(cfg: Any) -> list[str]:
    """Claims (those ``select.claims`` names, null: all) whose two runs are both built in this tier."""
    built = set(built_runs(cfg))
    return [c for c, claim in cfg.paper.claims.items()
            if _wanted(cfg, "claims", c) and claim.treatment in built and claim.control in built]


def primary_benchmarks(cfg: Any) -> list[str]:
    """Selected benchmarks the claims and sweep figures count (``primary``; secondary sets are table rows only)."""
    return [b for b in benchmarks(cfg) if cfg.benchmarks[b].primary]


def claim_benchmarks(cfg: Any, claim: str) -> list[str]:
    """Selected primary benchmarks of a claim's kind."""
    kind = cfg.paper.claims[claim].kind
    return [b for b in primary_benchmarks(cfg) if cfg.benchmarks[b].kind == kind]


def sweep_points(cfg: Any, name: str) -> dict[str, dict]:
    """Per run of a sweep figure: its x value and what the FLOPs count needs (model, corners, context)."""
    axis = cfg.paper.figures[name].x
    points = {}
    for run in figure_runs(cfg, name):
        rc = run_config(cfg, run)
        exp = rc.experiment
        context = (train_context_length(exp.method, exp.context_length)
                   or get_model_config(rc.train.model)["text_cfg"]["context_length"])
        x = {"merged_num": rc.sampling.merged_num, "n_subcaptions": rc.sampling.n_subcaptions,
             "context_length": context, "corner_tokens": exp.corner_tokens,
             "train_samples": exp.train_samples or cfg.world.n_train, "steps": rc.train.steps}[axis]
        points[run] = {"x": x, "model": rc.train.model, "corner_tokens": exp.corner_tokens, "context": context}
    return points


def maps_checkpoints(cfg: Any, name: str) -> dict[str, str]:
    """Run -> checkpoint (its first seed) of each run a maps figure draws."""
    template = tier_paths(cfg).checkpoint
    return {r: template.format(run=r, seed=experiment_seeds(cfg, r)[0]) for r in figure_runs(cfg, name)}


def check_plan(cfg: Any) -> None:
    """Every whole-config check the workflow runs before it plans; ``lotlip check-config`` runs the same.

    The whole config's checks (every run resolved, every seed), then what only the plan computes: the points of
    every sweep figure. Raises ``ConfigError`` with one line.
    """
    check_config(cfg)
    for name in paper_figures(cfg):
        if cfg.paper.figures[name].kind == "sweep":
            sweep_points(cfg, name)


# --- study snapshots (workflow/rules/snapshot.smk) ------------------------------------------------------------

# A study is a named tier (config/studies/<study>.yaml, config `snapshot: true`) whose tables, figures and claims are
# copied here, into git (.gitignore keeps results/studies/ tracked), beside the tier's own results/<tier>/.
STUDIES_ROOT = "results/studies"
STUDY_CONFIGS = "config/studies"


def snapshot_dir(cfg: Any) -> str:
    """The folder a tier's snapshot is written to: ``results/studies/<tier>``."""
    return f"{STUDIES_ROOT}/{cfg.tier}"


def snapshot_command(cfg: Any) -> str:
    """The command that rebuilds a study's snapshot from an empty checkout (its file overrides the default)."""
    return f"snakemake --cores 2 all --configfile config/config.yaml {STUDY_CONFIGS}/{cfg.tier}.yaml"


def snapshot_runs(cfg: Any) -> dict[str, list[int]]:
    """Trained run -> the seeds it is trained with, as a snapshot records them."""
    return {run: experiment_seeds(cfg, run) for run in trained_runs(cfg)}
