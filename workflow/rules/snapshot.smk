# Stage 7 (snapshot): a study's tables, figures and claims copied into results/studies/<tier>/, which git tracks,
# with snapshot.json (tier, sha256 of the resolved config, commit, version, seeds of every run, the command that
# rebuilds it). Only a named tier with config `snapshot: true` (config/studies/<study>.yaml) has this rule;
# `rule all` asks for SNAPSHOT (empty otherwise). Re-runs when the config or any copied file changes.
# CLI: lotlip/cli/snapshot.py; entry point: lotlip/stages/snapshot.py. SNAPSHOT and its inputs: common.smk.


if CFG.snapshot:

    rule snapshot:
        input:
            snapshot_inputs,
        output:
            SNAPSHOT[0],
        params:
            cfg=lambda w: json.dumps(to_dict(CFG), sort_keys=True),
            results=RES,
            folder=snapshot_dir(CFG),
        conda:
            "../envs/lotlip.yaml"
        log:
            f"{LOG}/snapshot.log",
        shell:
            "lotlip snapshot --cfg {params.cfg:q} --results {params.results:q} --out {params.folder:q} {input:q}"
            " > {log:q} 2>&1"
