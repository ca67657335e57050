# Stage 1 (fetch, real tiers): catalog datasets and released weights, shared by every tier of the checkout
# (resources/data, resources/models: the catalog fixes what a name holds), and real benchmarks imported as this
# tier's benchmark folders (texts + paths of the original images). Names and arguments come from lotlip.plan.
# CLI: lotlip/cli/fetch.py; entry points: lotlip/stages/fetch.py.


rule fetch:
    output:
        f"{DATA_ROOT}/.fetched/{{dataset}}.json",
    wildcard_constraints:
        dataset=alternation(fetched_datasets(CFG)),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/fetch/{{dataset}}.log",
    shell:
        "lotlip fetch --dataset {wildcards.dataset:q} --root resources/data --out {output:q} > {log:q} 2>&1"  # DATA_ROOT


rule fetch_model:
    output:
        f"{MODELS_DIR}/{{model}}/{{file}}",
    wildcard_constraints:
        model=alternation(downloaded_models(CFG)),
        file="[^/]+",
    params:
        url=lambda w: CFG.models[w.model].url,
        sha256=lambda w: CFG.models[w.model].sha256 or "",
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/fetch/model_{{model}}_{{file}}.log",
    shell:
        "lotlip fetch-model --url {params.url:q} --sha256 {params.sha256:q} --out {output:q} > {log:q} 2>&1"


rule import_benchmark:
    input:
        lambda w: fetch_markers(CFG, w.bench),
    output:
        directory(f"{RSC}/benchmarks/{{bench}}"),
    wildcard_constraints:
        bench=alternation(real_benchmarks(CFG)),
    params:
        args=lambda w: import_args(CFG, w.bench),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/benchmark/{{bench}}.log",
    shell:
        "lotlip import-benchmark {params.args} --data-root resources/data --out {output:q} > {log:q} 2>&1"  # DATA_ROOT
