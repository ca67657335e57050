# Stage 6 (report): paper-shaped tables.


rule table_long_retrieval:
    input:
        expand("results/eval/{run}/{bench}.json", run=RUNS, bench=BENCHMARKS),
    output:
        csv="results/table_long_retrieval.csv",
        md="results/table_long_retrieval.md",
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/table_long_retrieval.log",
    shell:
        "lotlip report --out {output.csv:q} {input:q} > {log:q} 2>&1"
