# Stage 2 (relabel): long captions for every training image from the configured captioner backend.


rule relabel:
    input:
        "resources/world/train",
    output:
        "results/captions/train.jsonl",
    params:
        cfg=cfg_json("relabel"),
    log:
        "logs/relabel.log",
    shell:
        "{LOTLIP} relabel --cfg {params.cfg:q} --world {input:q} --out {output:q} > {log:q} 2>&1"
