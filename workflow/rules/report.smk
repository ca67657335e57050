# Stage 6 (report): everything read off the evaluation JSONs. Results tables (one per table of
# lotlip.constants.TABLES, trained runs and released models side by side), the same with reference numbers beside
# ours, dataset statistics; the paper-shaped tables 2/3/4/5/7/9 (mean ± 95% interval over seeds), figures 1/2/4
# (seaborn PNG + PDF + CSV) and the claims check, each declared under `paper:` in config; and the report's pages
# (lotlip/report/landing.py): each table and the claims check as an HTML page (the report offers a CSV only as a
# download) and the landing page that workflow/report/workflow.rst includes (claims verdicts, headline table, Fig. 1
# maps) above Snakemake's job graph. A tier without claims, paper tables or a maps figure gets a landing page
# saying so. Each output re-runs only when its own definition or what it reads changes.
# CLI: lotlip/cli/report.py; entry points: lotlip/stages/report.py.


rule table:
    input:
        lambda w: eval_files(CFG, RUNS, benchmarks_for_table(w.table)),
    output:
        csv=f"{RES}/table_{{table}}.csv",
        md=f"{RES}/table_{{table}}.md",
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/table_{{table}}.log",
    shell:
        "lotlip report --table {wildcards.table:q} --out {output.csv:q} {input:q} > {log:q} 2>&1"


rule table_dataset_stats:
    input:
        images=f"{RSC}/images/train",
        captions=f"{RES}/captions/train.jsonl",
        benchmarks=expand(f"{RSC}/benchmarks/{{bench}}", bench=BENCHMARKS),
    output:
        csv=f"{RES}/table_dataset_stats.csv",
        md=f"{RES}/table_dataset_stats.md",
    params:
        cfg=lambda w: cfg_json("train"),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/table_dataset_stats.log",
    shell:
        "lotlip stats --cfg {params.cfg:q} --images {input.images:q} --captions {input.captions:q}"
        " --out {output.csv:q} {input.benchmarks:q} > {log:q} 2>&1"


rule table_reference:
    input:
        f"{RES}/table_{{table}}.csv",
    output:
        csv=f"{RES}/table_{{table}}_vs_reference.csv",
        md=f"{RES}/table_{{table}}_vs_reference.md",
    params:
        reference=lambda w: reference_json(CFG),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/table_{{table}}_vs_reference.log",
    shell:
        "lotlip reference-table --reference {params.reference:q} --out {output.csv:q} {input:q} > {log:q} 2>&1"


rule paper_table:
    input:
        lambda w: eval_files(CFG, list(paper_table_rows(CFG, w.name)), list(paper_table_kinds(CFG, w.name))),
    output:
        csv=f"{RES}/table_{{name}}.csv",
        md=f"{RES}/table_{{name}}.md",
    wildcard_constraints:
        name=alternation(PAPER_TABLES),
    params:
        spec=lambda w: paper_table_spec(w.name),
        kinds=lambda w: json.dumps(paper_table_kinds(CFG, w.name)),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/table_{{name}}.log",
    shell:
        "lotlip paper-table --spec {params.spec:q} --kinds {params.kinds:q} --out {output.csv:q} {input:q}"
        " > {log:q} 2>&1"


rule sweep_figure:
    input:
        lambda w: eval_files(CFG, figure_runs(CFG, w.fig), primary_benchmarks(CFG)),
    output:
        png=report(f"{RES}/figures/{{fig}}.png", caption="../report/figure.rst", category="Figures"),
        pdf=f"{RES}/figures/{{fig}}.pdf",
        csv=f"{RES}/figures/{{fig}}.csv",
    wildcard_constraints:
        fig=alternation(SWEEPS),
    params:
        spec=lambda w: json.dumps(to_dict(CFG.paper.figures[w.fig]), sort_keys=True),
        points=lambda w: json.dumps(sweep_points(CFG, w.fig), sort_keys=True),
        caption=lambda w: CFG.paper.figures[w.fig].caption,
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/figure_{{fig}}.log",
    shell:
        "lotlip figure --spec {params.spec:q} --points {params.points:q} --threads {threads}"
        " --out {output.png:q} {input:q} > {log:q} 2>&1"


rule maps_figure:
    input:
        checkpoints=lambda w: list(maps_checkpoints(CFG, w.fig).values()),
        benchmark=lambda w: f"{RSC}/benchmarks/{CFG.paper.figures[w.fig].benchmark}",
    output:
        png=report(f"{RES}/figures/{{fig}}.png", caption="../report/figure.rst", category="Figures"),
        pdf=f"{RES}/figures/{{fig}}.pdf",
        csv=f"{RES}/figures/{{fig}}.csv",
    wildcard_constraints:
        fig=alternation(MAPS),
    params:
        spec=lambda w: json.dumps(to_dict(CFG.paper.figures[w.fig]), sort_keys=True),
        checkpoints=lambda w: json.dumps(maps_checkpoints(CFG, w.fig)),
        caption=lambda w: CFG.paper.figures[w.fig].caption,
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/figure_{{fig}}.log",
    shell:
        "lotlip figure --spec {params.spec:q} --checkpoints {params.checkpoints:q} --benchmark {input.benchmark:q}"
        " --threads {threads} --out {output.png:q} > {log:q} 2>&1"


rule claims:
    input:
        claims_inputs,
    output:
        csv=f"{RES}/claims.csv",
        md=f"{RES}/claims.md",
    params:
        spec=lambda w: json.dumps({c: to_dict(CFG.paper.claims[c]) for c in CLAIMS}),  # key order: claim order
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/claims.log",
    shell:
        "lotlip claims --spec {params.spec:q} --out {output.csv:q} {input:q} > {log:q} 2>&1"


rule table_html:
    input:
        f"{RES}/table_{{name}}.md",
    output:
        report(f"{RES}/report/table_{{name}}.html", caption="../report/table.rst", category="Tables"),
    wildcard_constraints:
        name=alternation(REPORT_TABLES),
    params:
        caption=lambda w: report_table_title(w.name),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/table_{{name}}_html.log",
    shell:
        "lotlip table-html --title {params.caption:q} --out {output:q} {input:q} > {log:q} 2>&1"


rule claims_html:
    input:
        f"{RES}/claims.md",
    output:
        report(f"{RES}/report/claims.html", caption="../report/claims.rst", category="Claims"),
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/claims_html.log",
    shell:
        "lotlip table-html --title 'Claims check' --out {output:q} {input:q} > {log:q} 2>&1"


rule landing:
    input:
        unpack(landing_inputs),
    output:
        f"{RES}/report/landing.html",
    params:
        args=landing_args,
    conda:
        "../envs/lotlip.yaml"
    log:
        f"{LOG}/report/landing.log",
    shell:
        "lotlip landing {params.args} --out {output:q} > {log:q} 2>&1"
