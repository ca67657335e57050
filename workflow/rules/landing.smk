# Stage 7 (report pages): what `snakemake --report results/report.html` shows (lotlip/report/landing.py). Each
# table and the claims check as a readable HTML page (the report offers a CSV only as a download), and the landing
# page's sections, which workflow/report/workflow.rst includes: the claims verdicts, the headline table (the first
# paper table: Table 2's analog in the synthetic tiers) and the Fig. 1 maps, above Snakemake's job graph. A tier
# without claims, paper tables or a maps figure gets a landing page saying so. What each tier shows: common.smk.


rule table_html:
    input:
        "results/table_{name}.md",
    output:
        report("results/report/table_{name}.html", caption="../report/table.rst", category="Tables"),
    wildcard_constraints:
        name=alternation(REPORT_TABLES),
    params:
        caption=lambda w: report_table_title(w.name),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/table_{name}_html.log",
    shell:
        "lotlip table-html --title {params.caption:q} --out {output:q} {input:q} > {log:q} 2>&1"


rule claims_html:
    input:
        "results/claims.md",
    output:
        report("results/report/claims.html", caption="../report/claims.rst", category="Claims"),
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/claims_html.log",
    shell:
        "lotlip table-html --title 'Claims check' --out {output:q} {input:q} > {log:q} 2>&1"


rule landing:
    input:
        unpack(landing_inputs),
    output:
        "results/report/landing.html",
    params:
        args=landing_args,
    conda:
        "../envs/lotlip.yaml"
    log:
        "logs/report/landing.log",
    shell:
        "lotlip landing {params.args} --out {output:q} > {log:q} 2>&1"
