# Stage 5 (evaluate): one job per run x seed loads the checkpoint once and writes one JSON per benchmark.


rule evaluate:
    input:
        checkpoint="results/checkpoints/{run}/seed{seed}/model.pt",
        benchmarks=expand("resources/benchmarks/{bench}", bench=BENCHMARKS),
    output:
        expand("results/eval/{{run}}/seed{{seed}}/{bench}.json", bench=BENCHMARKS),
    params:
        cfg=lambda w: cfg_json("eval", "train"),
        names=lambda w: shlex.join(BENCHMARKS),
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/evaluate/{run}/seed{seed}.log",
    shell:
        "lotlip evaluate --cfg {params.cfg:q} --run {wildcards.run:q} --checkpoint {input.checkpoint:q}"
        " --name {params.names} --benchmark {input.benchmarks:q} --out {output:q} > {log:q} 2>&1"
