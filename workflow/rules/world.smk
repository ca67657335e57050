# Stage 1 (world): the training images (the synthetic world, or img2dataset shards of a fetched url list) and the
# synthetic benchmarks (real benchmarks are imported by the fetch stage). CLI: lotlip/cli/world.py; entry points:
# lotlip/stages/world.py.


rule world:
    input:
        world_inputs(CFG),
    output:
        directory(f"{RSC}/world/train"),
    params:
        cfg=lambda w: world_json(),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/world.log",
    shell:
        "lotlip world --cfg {params.cfg:q} --out {output:q} > {log:q} 2>&1"


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
