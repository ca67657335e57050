"""Published numbers for ``lotlip benchmark``'s merged table, read from the release tier's config.

``config/release_eval.yaml`` holds ``reference`` (``source``, ``metrics`` [i2t_r1, t2i_r1], ``values``: model ->
benchmark -> numbers) and ``benchmarks`` (benchmark -> ``source``); here the benchmark names become protocol names
(through the shared source) and the metrics CLIP_benchmark's names, so :func:`lotlip.report.reference.with_reference`
adds ``<metric>_ref`` / ``<metric>_diff`` to rows whose model name is a reference model. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lotlip.eval.protocols import PROTOCOLS

RUNNER_TO_CLIP_BENCHMARK = {"i2t_r1": "text_retrieval_recall@1", "t2i_r1": "image_retrieval_recall@1",
                            "i2t_r5": "text_retrieval_recall@5", "t2i_r5": "image_retrieval_recall@5",
                            "top1": "acc1", "top5": "acc5"}


def load_references(path: str | Path) -> dict:
    """``{"source", "metrics", "values"}`` with protocol names and CLIP_benchmark metric names."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference config not found")
    data = yaml.safe_load(path.read_text()) or {}
    ref, benches = data.get("reference"), data.get("benchmarks") or {}
    if not isinstance(ref, dict) or not {"metrics", "values"} <= set(ref):
        raise ValueError(f"{path}: field 'reference' (with metrics and values) missing")
    unknown = [m for m in ref["metrics"] if m not in RUNNER_TO_CLIP_BENCHMARK]
    if unknown:
        raise ValueError(f"{path}: reference.metrics: {unknown[0]!r} has no CLIP_benchmark name")
    by_source = {p.source: p.name for p in PROTOCOLS.values()}
    values = {}
    for model, per_bench in ref["values"].items():
        values[model] = {}
        for bench, numbers in per_bench.items():
            source = (benches.get(bench) or {}).get("source", bench)
            if source not in by_source:
                raise ValueError(f"{path}: reference.values.{model}.{bench}: no protocol reads source {source!r}")
            values[model][by_source[source]] = list(numbers)
    return {"source": ref.get("source") or str(path), "values": values,
            "metrics": [RUNNER_TO_CLIP_BENCHMARK[m] for m in ref["metrics"]]}
