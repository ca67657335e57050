# Stages 5-6 for models evaluated as released (LoTLIP, CLIP, Long-CLIP): one JSON per model x benchmark in
# results/eval/ (the table rule collects them beside trained runs), and tables with reference numbers beside ours.


rule evaluate_model:
    input:
        weights=lambda w: model_weights(CFG, w.model),
        benchmark="resources/benchmarks/{bench}",
    output:
        "results/eval/{model}/{bench}.json",
    wildcard_constraints:
        model=alternation(eval_models(CFG)),
    params:
        spec=lambda w: model_spec_json(CFG, w.model),
        settings=lambda w: eval_args(CFG),
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/evaluate/{model}/{bench}.log",
    shell:
        "lotlip evaluate-model --model {wildcards.model:q} --spec {params.spec:q} --weights {input.weights:q}"
        " --name {wildcards.bench:q} --benchmark {input.benchmark:q} {params.settings} --out {output:q}"
        " > {log:q} 2>&1"


rule table_reference:
    input:
        "results/table_{table}.csv",
    output:
        csv="results/table_{table}_vs_reference.csv",
        md="results/table_{table}_vs_reference.md",
    params:
        reference=lambda w: reference_json(CFG),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/table_{table}_vs_reference.log",
    shell:
        "lotlip reference-table --reference {params.reference:q} --out {output.csv:q} {input:q} > {log:q} 2>&1"
