"""What the workflow builds for a validated config: selected benchmarks, trained runs, evaluated models, and
the inputs and arguments of the fetch / import / release-evaluation rules.

Import-light (the Snakefile reads it at parse time). Tolerates a config schema from before the release tier
(no ``select``, ``models``, ``reference``, ``BenchmarkConfig.source``): everything is then synthetic and selected.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from lotlip.data.import_real import SOURCES

DATA_ROOT = "resources/data"
FETCHED = DATA_ROOT + "/.fetched/{dataset}.json"
MODELS_DIR = "resources/models"


def alternation(names: Iterable[str]) -> str:
    """A regex matching exactly one of ``names`` (and nothing when there are none)."""
    names = sorted(names)
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def _chosen(declared: Iterable[str], chosen: list[str] | None) -> list[str]:
    return sorted(declared) if chosen is None else sorted(chosen)


def _select(cfg: Any, what: str) -> list[str] | None:
    select = getattr(cfg, "select", None)
    return None if select is None else getattr(select, what)


def benchmarks(cfg: Any) -> list[str]:
    """Benchmarks this tier builds and evaluates."""
    return _chosen(cfg.benchmarks, _select(cfg, "benchmarks"))


def trained_runs(cfg: Any) -> list[str]:
    """Declared experiments this tier trains (and evaluates)."""
    return _chosen(cfg.experiments, _select(cfg, "experiments"))


def eval_models(cfg: Any) -> list[str]:
    """Models evaluated as released (no training)."""
    return _chosen(getattr(cfg, "models", {}), _select(cfg, "models"))


def source(cfg: Any, bench: str) -> str:
    """``synthetic`` or the real set a benchmark imports."""
    return getattr(cfg.benchmarks[bench], "source", "synthetic")


def synthetic_benchmarks(cfg: Any) -> list[str]:
    return [b for b in benchmarks(cfg) if source(cfg, b) == "synthetic"]


def real_benchmarks(cfg: Any) -> list[str]:
    return [b for b in benchmarks(cfg) if source(cfg, b) != "synthetic"]


def fetch_markers(cfg: Any, bench: str) -> list[str]:
    """Marker files of the catalog datasets a real benchmark's import reads."""
    return [FETCHED.format(dataset=d) for d in SOURCES[source(cfg, bench)].datasets]


def fetched_datasets(cfg: Any) -> list[str]:
    """Every catalog dataset the selected real benchmarks need."""
    return sorted({d for b in real_benchmarks(cfg) for d in SOURCES[source(cfg, b)].datasets})


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
    ref = getattr(cfg, "reference", None)
    if ref is None:
        return []
    runs = set(trained_runs(cfg)) | set(eval_models(cfg))
    out = []
    for name, spec in tables.items():
        if not set(ref.metrics) <= set(spec.metrics):
            continue
        benches = {b for b in benchmarks(cfg) if cfg.benchmarks[b].kind in spec.kinds}
        if any(r in runs and b in benches for r, bs in ref.values.items() for b in bs):
            out.append(name)
    return out
