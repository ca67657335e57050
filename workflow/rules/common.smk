# Validated config and the small helpers rules use. Validation lives in lotlip.config (one schema); what a tier
# builds (selected benchmarks, trained runs, released models, their inputs) lives in lotlip.plan (tested).
import json
import shlex
import sys
from pathlib import Path

from snakemake.common.configfile import load_configfile

from lotlip.artifacts import restore_pulled_mtimes
from lotlip.config import ConfigError, load_config, run_config, to_dict
from lotlip.plan import (
    DATA_ROOT,
    MODELS_DIR,
    alternation,
    checked_claims,
    claim_benchmarks,
    benchmarks,
    check_plan,
    downloaded_models,
    eval_args,
    eval_files,
    eval_models,
    fetch_markers,
    fetched_datasets,
    figure_runs,
    image_init_inputs,
    import_args,
    maps_checkpoints,
    model_spec_json,
    model_weights,
    paper_figures,
    paper_table_kinds,
    paper_table_rows,
    paper_tables,
    primary_benchmarks,
    real_benchmarks,
    reference_json,
    reference_tables,
    snapshot_dir,
    sweep_points,
    synthetic_benchmarks,
    text_init_checkpoint,
    tier_paths,
    trained_runs,
    world_inputs,
    world_settings,
)
from lotlip.report.landing import table_title as landing_table_title
from lotlip.constants import TABLES as TABLE_SPECS


def ordered_config_sources():
    """What Snakemake merged into `config`, in its order and read by its own reader: the Snakefile's configfile
    (unless --replace-workflow-config or given again with --configfile), each --configfile, then --config.
    Snakemake's merge keeps inherited keys first, so a study's paper-table rows would follow config/config.yaml's
    order; lotlip's loader lets a later source's rows replace them. Mappings, so errors still read "config: ..."."""
    settings = workflow.config_settings
    cli = [Path(f) for f in settings.configfiles]
    own = [] if settings.replace_workflow_config else [Path(f).absolute() for f in workflow.configfiles]
    return [*(load_configfile(f) for f in own if f not in cli), *map(load_configfile, cli), dict(settings.config)]


try:
    CFG = load_config(*ordered_config_sources(), origin="config")  # Snakemake's values; a later file's rows win
    check_plan(CFG)
except ConfigError as exc:
    sys.exit(f"lotlip: config error: {exc}")

# Where this tier writes (config `tier`): the default at the top of results/, resources/, logs/; any other tier
# under results/<tier>/ etc., so tiers coexist in one checkout. Downloads (DATA_ROOT, MODELS_DIR) are shared.
PATHS = tier_paths(CFG)
RES, RSC, LOG = PATHS.results, PATHS.resources, PATHS.logs

TRAINED = trained_runs(CFG)  # declared experiments this tier trains
MODELS = eval_models(CFG)  # models evaluated as released
RUNS = TRAINED + MODELS  # the run column of every table
BENCHMARKS = benchmarks(CFG)


TABLES = [t for t, spec in TABLE_SPECS.items() if any(CFG.benchmarks[b].kind in spec.kinds for b in BENCHMARKS)]
REFERENCE_TABLES = [t for t in reference_tables(CFG, TABLE_SPECS) if t in TABLES]


wildcard_constraints:
    run=alternation(TRAINED),
    bench=alternation(BENCHMARKS),
    seed=r"\d+",
    table="|".join(TABLE_SPECS),


def benchmarks_for_table(table):
    """Benchmarks whose kind the table collects."""
    return [b for b in BENCHMARKS if CFG.benchmarks[b].kind in TABLE_SPECS[table].kinds]


def cfg_json(*sections):
    """The named config sections as JSON: a stage re-runs exactly when these change."""
    return json.dumps({s: to_dict(getattr(CFG, s)) for s in sections}, sort_keys=True)


def world_json():
    """``--cfg`` of the images stage: the ``world`` settings of the configured source (lotlip.plan.world_settings)."""
    return json.dumps({"world": world_settings(CFG)}, sort_keys=True)


def benchmark_json(bench):
    return json.dumps({"world": world_settings(CFG), "benchmarks": {bench: to_dict(CFG.benchmarks[bench])}},
                      sort_keys=True)


def run_json(run, seed):
    return json.dumps(to_dict(run_config(CFG, run, int(seed))), sort_keys=True)


# --- paper tables, figures and claims (workflow/rules/report.smk) ---
PAPER_TABLES = paper_tables(CFG)
PAPER_FIGURES = paper_figures(CFG)
SWEEPS = [f for f in PAPER_FIGURES if CFG.paper.figures[f].kind == "sweep"]
MAPS = [f for f in PAPER_FIGURES if CFG.paper.figures[f].kind == "maps"]
CLAIMS = checked_claims(CFG)


def paper_table_spec(name):
    spec = to_dict(CFG.paper.tables[name])
    spec["rows"] = paper_table_rows(CFG, name)
    return json.dumps(spec)  # key order is row order


def claims_inputs(wildcards):
    files = []
    for c in CLAIMS:
        claim = CFG.paper.claims[c]
        files += eval_files(CFG, [claim.treatment, claim.control], claim_benchmarks(CFG, c))
    return sorted(set(files))


# --- the report's pages (workflow/rules/report.smk, lotlip/report/landing.py) ---
REPORT_TABLES = [*PAPER_TABLES, *TABLES, *(f"{t}_vs_reference" for t in REFERENCE_TABLES)] + (
    ["dataset_stats"] if TRAINED else []
)
LANDING_TABLE = REPORT_TABLES[0] if REPORT_TABLES else None  # the first paper table: Table 2's analog
LANDING_FIGURE = MAPS[0] if MAPS else None


def report_table_title(name):
    return CFG.paper.tables[name].caption if name in PAPER_TABLES else landing_table_title(name)


def landing_inputs(wildcards):
    """The landing page's sections this tier has: claims, headline table, maps figure (each possibly absent)."""
    return {
        "claims": [f"{RES}/claims.csv"] if CLAIMS else [],
        "table": [f"{RES}/table_{LANDING_TABLE}.md"] if LANDING_TABLE else [],
        "figure": [f"{RES}/figures/{LANDING_FIGURE}.png"] if LANDING_FIGURE else [],
    }


def landing_args(wildcards, input):
    """`lotlip landing` options of those sections (one left out says on the page why it is absent)."""
    args = []
    if input.claims:
        args += ["--claims", input.claims[0]]
    if input.table:
        args += ["--table", input.table[0], "--table-title", report_table_title(LANDING_TABLE)]
    if input.figure:
        args += ["--figure", input.figure[0], "--figure-caption", CFG.paper.figures[LANDING_FIGURE].caption]
    return shlex.join(args)


# --- a study's snapshot (workflow/rules/snapshot.smk) ---
SNAPSHOT = [f"{snapshot_dir(CFG)}/snapshot.json"] if CFG.snapshot else []


def snapshot_inputs(wildcards):
    """What `rule all` builds of tables, figures and claims (not the report's HTML pages or the figures' PDFs)."""
    files = [f"{RES}/table_{name}.{ext}" for name in REPORT_TABLES for ext in ("csv", "md")]
    files += [f"{RES}/figures/{fig}.{ext}" for fig in PAPER_FIGURES for ext in ("png", "csv")]
    files += [f"{RES}/claims.csv", f"{RES}/claims.md"] if CLAIMS else []
    return files
