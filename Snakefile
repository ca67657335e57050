# lotlip: LoTLIP reproduction pipeline. `snakemake --cores 2 all` builds every table, figure and the claims
# check of the configured tier; `snakemake --report results/report.html` bundles them.
import os

from snakemake.utils import min_version

min_version("9.0")

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


# The report's landing page (workflow/report/workflow.rst) includes <results>/report/landing.html (rule `landing`);
# a report made before that page exists shows a plain description saying how to build it.
LANDING_RST = "workflow/report/workflow.rst"
if not os.path.exists(f"{RES}/report/landing.html"):
    LANDING_RST = "workflow/report/workflow_unbuilt.rst"


report: LANDING_RST


if workflow.is_main_process:  # after a plain `dvc pull`: pulled outputs get their recorded times back
    restored = restore_pulled_mtimes()
    if restored:
        print(f"lotlip: {restored} outputs checked out by DVC got back the times Snakemake recorded", file=sys.stderr)


include: "workflow/rules/images.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/relabel.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/snapshot.smk"


rule all:
    input:
        expand(f"{RES}/table_{{table}}.csv", table=TABLES),
        expand(f"{RES}/table_{{table}}_vs_reference.csv", table=REFERENCE_TABLES),
        [f"{RES}/table_dataset_stats.csv"] if TRAINED else [],
        expand(f"{RES}/table_{{name}}.csv", name=PAPER_TABLES),
        expand(f"{RES}/figures/{{fig}}.png", fig=PAPER_FIGURES),
        [f"{RES}/claims.csv"] if CLAIMS else [],
        expand(f"{RES}/report/table_{{name}}.html", name=REPORT_TABLES),
        [f"{RES}/report/claims.html"] if CLAIMS else [],
        f"{RES}/report/landing.html",
        SNAPSHOT,  # a study's committed snapshot (config `snapshot: true`), else nothing
    default_target: True
