# Stage 4 (train): one run per declared experiment and seed, run where config `launch` says: in this process
# (inline, the default) or as a submitit job (local, slurm) that this local rule submits and waits for. Resumes
# from <results>/checkpoints/{run}/seed{seed}/last.pt. CLI: lotlip/cli/train.py; entry point:
# lotlip/stages/train.py. A run with `text_init` waits for its source run, one with
# `image_init` for the weights it starts from (fetched first when they are a catalog file, e.g. timm's in21k ViT).
# Launch settings travel as a resource, not a param: where a run executes never changes its result, so changing
# them never re-runs training.


localrules:
    train,


rule train:
    input:
        shards=f"{RES}/shards/train",
        text_init=lambda w: text_init_checkpoint(CFG, w.run, int(w.seed)),
        image_init=lambda w: image_init_inputs(CFG, w.run),
    output:
        PATHS.checkpoint,
    params:
        run=lambda w: run_json(w.run, w.seed),
        text_init=lambda w, input: shlex.join(["--text-init", input.text_init[0]]) if input.text_init else "",
    threads: CFG.train.threads if CFG.launch.executor == "inline" else 1
    resources:
        launch=json.dumps(to_dict(CFG.launch), sort_keys=True),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/train/{{run}}/seed{{seed}}.log",
    shell:
        "lotlip train --run {params.run:q} --shards {input.shards:q} --out {output:q} --launch {resources.launch:q}"
        " {params.text_init} > {log:q} 2>&1"
