# Stage 2 (relabel): long captions for every training image from the configured captioner backend.


rule relabel:
    input:
        "resources/world/train",
    output:
        "results/captions/train.jsonl",
    params:
        cfg=lambda w: cfg_json("relabel"),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/relabel.log",
    shell:
        "lotlip relabel --cfg {params.cfg:q} --world {input:q} --out {output:q} > {log:q} 2>&1"
