# Stage 1 (fetch/world): the training images (the synthetic world, or img2dataset shards of a fetched url list)
# and generated benchmarks (real ones: fetch.smk).
from lotlip.plan import alternation, synthetic_benchmarks, world_inputs


rule world:
    input:
        world_inputs(CFG),
    output:
        directory("resources/world/train"),
    params:
        cfg=lambda w: world_json(),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/world.log",
    shell:
        "lotlip world --cfg {params.cfg:q} --out {output:q} > {log:q} 2>&1"


rule benchmark:
    output:
        directory("resources/benchmarks/{bench}"),
    wildcard_constraints:
        bench=alternation(synthetic_benchmarks(CFG)),
    params:
        cfg=lambda w: benchmark_json(w.bench),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/benchmark/{bench}.log",
    shell:
        "lotlip synthetic-benchmark --cfg {params.cfg:q} --name {wildcards.bench:q} --out {output:q} > {log:q} 2>&1"
