# Stage 1 (images): the training images (the synthetic world rendered, or img2dataset shards of a fetched url list)
# and the synthetic benchmarks (real benchmarks are imported by the fetch stage). CLI: lotlip/cli/images.py; entry
# points: lotlip/stages/images.py.


rule images:
    input:
        world_inputs(CFG),
    output:
        directory(f"{RSC}/images/train"),
    params:
        cfg=lambda w: world_json(),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/images.log",
    shell:
        "lotlip images --cfg {params.cfg:q} --out {output:q} > {log:q} 2>&1"


rule benchmark:
    output:
        directory(f"{RSC}/benchmarks/{{bench}}"),
    wildcard_constraints:
        bench=alternation(synthetic_benchmarks(CFG)),
    params:
        cfg=lambda w: benchmark_json(w.bench),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/benchmark/{{bench}}.log",
    shell:
        "lotlip synthetic-benchmark --cfg {params.cfg:q} --name {wildcards.bench:q} --out {output:q} > {log:q} 2>&1"
