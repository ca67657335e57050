# Stage 4 (train): one run per declared experiment, run where config `launch` says: in this process (inline,
# the default) or as a submitit job (local, slurm) that this local rule submits and waits for. Resumes from
# results/checkpoints/{run}/last.pt. Launch settings travel as a resource, not a param: where a run executes
# never changes its result, so changing them never re-runs training.


localrules:
    train,


rule train:
    input:
        "results/shards/train",
    output:
        "results/checkpoints/{run}/model.pt",
    params:
        run=lambda w: run_json(w.run),
    threads: CFG.train.threads if CFG.launch.executor == "inline" else 1
    resources:
        launch=json.dumps(to_dict(CFG.launch), sort_keys=True),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/train/{run}.log",
    shell:
        "lotlip train --run {params.run:q} --shards {input:q} --out {output:q} --launch {resources.launch:q}"
        " > {log:q} 2>&1"
