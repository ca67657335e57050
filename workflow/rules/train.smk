# Stage 4 (train): one run per declared experiment; resumes from results/checkpoints/{run}/last.pt.


rule train:
    input:
        "results/shards/train",
    output:
        "results/checkpoints/{run}/model.pt",
    params:
        run=lambda w: run_json(w.run),
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/train/{run}.log",
    shell:
        "lotlip train --run {params.run:q} --shards {input:q} --out {output:q} > {log:q} 2>&1"
