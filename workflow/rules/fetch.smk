# Stage 1 (fetch, real tiers): catalog datasets and released weights into resources/, real benchmarks imported
# as benchmark folders (texts + paths of the original images). Names and arguments come from lotlip.plan.


rule fetch:
    output:
        "resources/data/.fetched/{dataset}.json",
    wildcard_constraints:
        dataset=alternation(fetched_datasets(CFG)),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/fetch/{dataset}.log",
    shell:
        "lotlip fetch --dataset {wildcards.dataset:q} --root resources/data --out {output:q} > {log:q} 2>&1"


rule fetch_model:
    output:
        "resources/models/{model}/{file}",
    wildcard_constraints:
        model=alternation(downloaded_models(CFG)),
        file="[^/]+",
    params:
        url=lambda w: CFG.models[w.model].url,
        sha256=lambda w: CFG.models[w.model].sha256 or "",
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/fetch/model_{model}_{file}.log",
    shell:
        "lotlip fetch-model --url {params.url:q} --sha256 {params.sha256:q} --out {output:q} > {log:q} 2>&1"


rule import_benchmark:
    input:
        lambda w: fetch_markers(CFG, w.bench),
    output:
        directory("resources/benchmarks/{bench}"),
    wildcard_constraints:
        bench=alternation(real_benchmarks(CFG)),
    params:
        args=lambda w: import_args(CFG, w.bench),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/benchmark/{bench}.log",
    shell:
        "lotlip import-benchmark {params.args} --data-root resources/data --out {output:q} > {log:q} 2>&1"
