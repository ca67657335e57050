# Stage 3 (shards): webdataset tar shards + sizes.json. CLI: lotlip/cli/shards.py; entry point:
# lotlip/stages/shards.py.


rule shards:
    input:
        images=f"{RSC}/images/train",
        captions=f"{RES}/captions/train.jsonl",
    output:
        directory(f"{RES}/shards/train"),
    params:
        cfg=lambda w: cfg_json("shards"),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/shards.log",
    shell:
        "lotlip shards --cfg {params.cfg:q} --images {input.images:q} --captions {input.captions:q}"
        " --out {output:q} > {log:q} 2>&1"
