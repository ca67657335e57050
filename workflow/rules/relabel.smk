# Stage 2 (relabel): long captions for every training image from the configured captioner backend.
# CLI: lotlip/cli/relabel.py; entry point: lotlip/stages/relabel.py.


rule relabel:
    input:
        f"{RSC}/images/train",
    output:
        f"{RES}/captions/train.jsonl",
    params:
        cfg=lambda w: cfg_json("relabel"),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/relabel.log",
    shell:
        "lotlip relabel --cfg {params.cfg:q} --images {input:q} --out {output:q} > {log:q} 2>&1"
