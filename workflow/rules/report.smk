# Stage 6 (report): paper-shaped tables.


rule table:
    input:
        lambda w: eval_files(CFG, RUNS, benchmarks_for_table(w.table)),
    output:
        csv="results/table_{table}.csv",
        md="results/table_{table}.md",
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/table_{table}.log",
    shell:
        "lotlip report --table {wildcards.table:q} --out {output.csv:q} {input:q} > {log:q} 2>&1"


rule table_dataset_stats:
    input:
        world="resources/world/train",
        captions="results/captions/train.jsonl",
        benchmarks=expand("resources/benchmarks/{bench}", bench=BENCHMARKS),
    output:
        csv="results/table_dataset_stats.csv",
        md="results/table_dataset_stats.md",
    params:
        cfg=lambda w: cfg_json("train"),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/table_dataset_stats.log",
    shell:
        "lotlip stats --cfg {params.cfg:q} --world {input.world:q} --captions {input.captions:q}"
        " --out {output.csv:q} {input.benchmarks:q} > {log:q} 2>&1"
