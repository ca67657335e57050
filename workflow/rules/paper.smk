# Stage 6 (report, paper-shaped): tables 2/3/4/5/7/9 (mean ± 95% interval over seeds), figures 1/2/4 (seaborn
# PNG + PDF + CSV) and the claims check, each declared under `paper:` in config and built from evaluation JSONs.
# Each output re-runs only when its own definition or the evaluations it reads change. The report shows the tables
# and the claims check as HTML pages (workflow/rules/landing.smk), the figures as they are.

rule paper_table:
    input:
        lambda w: eval_files(CFG, list(paper_table_rows(CFG, w.name)), list(paper_table_kinds(CFG, w.name))),
    output:
        csv="results/table_{name}.csv",
        md="results/table_{name}.md",
    wildcard_constraints:
        name=alternation(PAPER_TABLES),
    params:
        spec=lambda w: paper_table_spec(w.name),
        kinds=lambda w: json.dumps(paper_table_kinds(CFG, w.name)),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/table_{name}.log",
    shell:
        "lotlip paper-table --spec {params.spec:q} --kinds {params.kinds:q} --out {output.csv:q} {input:q}"
        " > {log:q} 2>&1"


rule sweep_figure:
    input:
        lambda w: eval_files(CFG, figure_runs(CFG, w.fig), BENCHMARKS),
    output:
        png=report("results/figures/{fig}.png", caption="../report/figure.rst", category="Figures"),
        pdf="results/figures/{fig}.pdf",
        csv="results/figures/{fig}.csv",
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
        "logs/report/figure_{fig}.log",
    shell:
        "lotlip figure --spec {params.spec:q} --points {params.points:q} --threads {threads}"
        " --out {output.png:q} {input:q} > {log:q} 2>&1"


rule maps_figure:
    input:
        checkpoints=lambda w: [CHECKPOINT.format(run=r, seed=experiment_seeds(CFG, r)[0]) for r in figure_runs(CFG, w.fig)],
        benchmark=lambda w: f"resources/benchmarks/{CFG.paper.figures[w.fig].benchmark}",
    output:
        png=report("results/figures/{fig}.png", caption="../report/figure.rst", category="Figures"),
        pdf="results/figures/{fig}.pdf",
        csv="results/figures/{fig}.csv",
    wildcard_constraints:
        fig=alternation(MAPS),
    params:
        spec=lambda w: json.dumps(to_dict(CFG.paper.figures[w.fig]), sort_keys=True),
        checkpoints=lambda w, input: json.dumps(dict(zip(figure_runs(CFG, w.fig), input.checkpoints))),
        caption=lambda w: CFG.paper.figures[w.fig].caption,
    threads: CFG.train.threads
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/figure_{fig}.log",
    shell:
        "lotlip figure --spec {params.spec:q} --checkpoints {params.checkpoints:q} --benchmark {input.benchmark:q}"
        " --threads {threads} --out {output.png:q} > {log:q} 2>&1"


rule claims:
    input:
        claims_inputs,
    output:
        csv="results/claims.csv",
        md="results/claims.md",
    params:
        spec=lambda w: json.dumps({c: to_dict(CFG.paper.claims[c]) for c in CLAIMS}),  # key order: claim order
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/claims.log",
    shell:
        "lotlip claims --spec {params.spec:q} --out {output.csv:q} {input:q} > {log:q} 2>&1"
