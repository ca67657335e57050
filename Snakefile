# lotlip: LoTLIP reproduction pipeline. `snakemake --cores 2 all` builds every table of the configured tier.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/relabel.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/table_{table}.csv", table=TABLES),
        "results/table_dataset_stats.csv",
    default_target: True
