# Stage 5 (evaluate): one job per trained run x seed loads the checkpoint once and writes one JSON per benchmark;
# one job per released model (LoTLIP, CLIP, Long-CLIP) x benchmark. The report stage collects both side by side.
# CLI: lotlip/cli/evaluate.py; entry points: lotlip/stages/evaluate.py.


rule evaluate:
    input:
        checkpoint=PATHS.checkpoint,
        benchmarks=expand(f"{RSC}/benchmarks/{{bench}}", bench=BENCHMARKS),
    output:
        expand(PATHS.trained_eval, run="{run}", seed="{seed}", bench=BENCHMARKS),
    params:
        cfg=lambda w: cfg_json("eval", "train"),
        names=lambda w: shlex.join(BENCHMARKS),
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/evaluate/{{run}}/seed{{seed}}.log",
    shell:
        "lotlip evaluate --cfg {params.cfg:q} --run {wildcards.run:q} --checkpoint {input.checkpoint:q}"
        " --name {params.names} --benchmark {input.benchmarks:q} --out {output:q} > {log:q} 2>&1"


rule evaluate_model:
    input:
        weights=lambda w: model_weights(CFG, w.model),
        benchmark=f"{RSC}/benchmarks/{{bench}}",
    output:
        PATHS.model_eval,
    wildcard_constraints:
        model=alternation(MODELS),
    params:
        spec=lambda w: model_spec_json(CFG, w.model),
        settings=lambda w: eval_args(CFG),
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/evaluate/{{model}}/{{bench}}.log",
    shell:
        "lotlip evaluate-model --model {wildcards.model:q} --spec {params.spec:q} --weights {input.weights:q}"
        " --name {wildcards.bench:q} --benchmark {input.benchmark:q} {params.settings} --out {output:q}"
        " > {log:q} 2>&1"
