# Stage 5 (evaluate): one JSON per run x benchmark.


rule evaluate:
    input:
        checkpoint="results/checkpoints/{run}/model.pt",
        benchmark="resources/benchmarks/{bench}",
    output:
        "results/eval/{run}/{bench}.json",
    params:
        cfg=cfg_json("eval", "train"),
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/evaluate/{run}/{bench}.log",
    shell:
        "lotlip evaluate --cfg {params.cfg:q} --run {wildcards.run:q} --name {wildcards.bench:q}"
        " --checkpoint {input.checkpoint:q} --benchmark {input.benchmark:q} --out {output:q} > {log:q} 2>&1"
