# Stage 3 (shards): webdataset tar shards + sizes.json.


rule shards:
    input:
        world="resources/world/train",
        captions="results/captions/train.jsonl",
    output:
        directory("results/shards/train"),
    params:
        cfg=lambda w: cfg_json("shards"),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/shards.log",
    shell:
        "lotlip shards --cfg {params.cfg:q} --world {input.world:q} --captions {input.captions:q}"
        " --out {output:q} > {log:q} 2>&1"
