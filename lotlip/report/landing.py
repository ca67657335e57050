"""What a reader of ``snakemake --report`` sees: the landing page and a readable page per table.

Snakemake's HTML report opens on the workflow description (``workflow/report/workflow.rst``) beside the job graph,
and offers a CSV only as a download. The description includes ``results/report/landing.html`` (rule ``landing``),
an HTML fragment written here: the claims check with its verdicts, the headline table (Table 2's analog in the
synthetic tiers) and the Fig. 1 similarity maps, each section present or saying why it is absent, and a style
block that stacks the job graph below them. Each table (and the claims check) is also rendered from its Markdown
to a standalone HTML page (rule ``table_html``), which the report shows instead of the CSV download.

Every output is self-contained (images as ``data:`` URIs): the report stays one file that opens offline.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from lotlip.io import write_text  # import-light: common.smk imports this module (table_title)

#: verdict -> the badge class that colours it (evidence for, against, or neither)
VERDICT_CLASS = {"reproduced": "for", "not reproduced": "against", "inconclusive": "open", "not measured": "open"}

#: section ids of the landing page, in order (tests/report/test_report_browser.py looks for them)
SECTIONS = ("lotlip-claims", "lotlip-headline-table", "lotlip-figure", "lotlip-jobgraph")

#: headings of the tables that are not paper tables (their Markdown has no caption)
TABLE_TITLES = {
    "long_retrieval": "Long-text retrieval: I2T / T2I R@1 of every run and seed on every long benchmark",
    "short_tasks": "Short retrieval (R@1, R@5) and zero-shot classification (top-1, top-5) of every run and seed",
    "dataset_stats": "Dataset statistics: images, texts, sub-captions and tokens per text of each dataset",
}

_TABLE_CSS = """
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #cbd5e1; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f1f5f9; }
tbody tr:nth-child(even) { background: #f8fafc; }
code { font-size: 0.9em; }
"""

# Scoped to the fragment; the `:has()` rules reach Snakemake's own containers: the landing view becomes a column
# (description, then the job graph below it) instead of a narrow text column beside the graph, and starts at the
# top instead of being centred (a centred page taller than the window cannot be scrolled to its top).
_LANDING_CSS = """
div.overflow-auto:has(#lotlip-landing) { align-items: flex-start; justify-content: flex-start; }
div.flex:has(> #rulegraph):has(#lotlip-landing) { flex-direction: column; min-width: 0; }
div.flex:has(> #rulegraph):has(#lotlip-landing) > div { max-width: 100%; }
div.prose:has(#lotlip-landing) { max-width: none; }
#lotlip-landing { color: #1e293b; max-width: 75rem; }
#lotlip-landing table { display: block; max-width: 100%; overflow-x: auto; }
#lotlip-landing h2 { font-size: 1.15rem; font-weight: 600; margin: 1.2rem 0 0.4rem; }
#lotlip-landing p { margin: 0.3rem 0; }
#lotlip-landing figure { margin: 0.5rem 0; }
#lotlip-landing img { max-width: 100%; height: auto; border: 1px solid #e2e8f0; }
#lotlip-landing figcaption { font-size: 0.8rem; color: #475569; }
#lotlip-landing .verdict { border-radius: 0.25rem; padding: 0 0.35rem; white-space: nowrap; }
#lotlip-landing .verdict.for { background: #dcfce7; color: #166534; }
#lotlip-landing .verdict.against { background: #fee2e2; color: #991b1b; }
#lotlip-landing .verdict.open { background: #e2e8f0; color: #334155; }
#lotlip-landing code::before, #lotlip-landing code::after { content: none; }
""" + "\n".join(f"#lotlip-landing {rule}" for rule in _TABLE_CSS.strip().splitlines())


def table_title(name: str) -> str:
    """The heading of table ``name`` (``results/table_<name>.md``) when it is not a paper table."""
    if name.endswith("_vs_reference"):
        return table_title(name.removesuffix("_vs_reference")) + ", beside the published reference numbers"
    return TABLE_TITLES.get(name, name.replace("_", " ").capitalize())


def verdict_class(verdict: str) -> str:
    """``for`` (reproduced, supported), ``against`` (not reproduced, contradicted) or ``open`` (neither)."""
    if verdict.startswith("supported"):
        return "for"
    if verdict.startswith("contradicted"):
        return "against"
    return VERDICT_CLASS.get(verdict, "open")


def markdown_html(text: str) -> str:
    """HTML of the Markdown the report writers produce (headings, emphasis, code, pipe tables)."""
    import markdown

    return markdown.markdown(text, extensions=["tables"], output_format="html")


def split_caption(text: str) -> tuple[str | None, str]:
    """``(caption, rest)``: a paper table's Markdown starts with its caption in bold (``**...**``); others have none."""
    first, _, rest = text.partition("\n")
    if len(first) > 4 and first.startswith("**") and first.endswith("**"):
        return first[2:-2], rest.lstrip("\n")
    return None, text


def png_data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def table_page(markdown_path: str | Path, title: str | None = None) -> str:
    """A standalone HTML page of one table's Markdown rendering (caption, table, notes)."""
    text = Path(markdown_path).read_text()
    caption, _ = split_caption(text)
    title = caption or title or Path(markdown_path).stem
    headed = caption is not None or text.startswith("# ")  # its own caption or heading (the claims check's)
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\nbody {{ font-family: sans-serif; color: #1e293b; "
            f"margin: 1rem; }}\n{_TABLE_CSS}</style>\n</head>\n<body>\n"
            + ("" if headed else f"<h1>{html.escape(title)}</h1>\n") + markdown_html(text) + "\n</body>\n</html>\n")


def claims_section(claims_csv: str | Path | None) -> str:
    """The verdict counts and one row per claim (what the paper says, the comparison, the effect, the verdict)."""
    import pandas as pd

    from lotlip.report.claims import effect_text, verdict_summary

    head = '<section id="lotlip-claims">\n<h2>Claims check</h2>\n'
    if claims_csv is None:
        return head + ("<p>This tier checks no claims: none of the paper's claims (config <code>paper.claims</code>) "
                       "compares two runs that it builds.</p>\n</section>\n")
    df = pd.read_csv(claims_csv)
    rows = []
    for _, r in df.iterrows():
        verdict = str(r.verdict)
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            r.text, r.source, f"{r.treatment} vs {r.control}", r.measure, effect_text(r)))
            + f'<td><span class="verdict {verdict_class(verdict)}">{html.escape(verdict)}</span></td></tr>')
    checked = f"{len(df)} claim{'s' * (len(df) != 1)} checked: {verdict_summary(df)}."
    return (head + f"<p><strong>{html.escape(checked)}</strong> Effect = treatment minus control in percentage "
            "points with its 95% interval; the Claims entry of the menu holds the full table and how verdicts are "
            "computed.</p>\n<table>\n<thead><tr><th>paper says</th><th>source</th>"
            "<th>comparison</th><th>measure</th><th>effect (95% CI)</th><th>verdict</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows) + "\n</tbody>\n</table>\n</section>\n")


def table_section(table_md: str | Path | None, title: str | None = None) -> str:
    """The headline table: its caption as the heading, then its Markdown rendering."""
    head = '<section id="lotlip-headline-table">\n'
    if table_md is None:
        return head + "<h2>Tables</h2>\n<p>This tier builds no table.</p>\n</section>\n"
    caption, body = split_caption(Path(table_md).read_text())
    heading = caption or title or Path(table_md).stem
    return head + f"<h2>{html.escape(heading)}</h2>\n{markdown_html(body)}\n</section>\n"


def figure_section(png: str | Path | None, caption: str | None = None) -> str:
    """The figure inline (PNG as a data URI) with its caption."""
    head = '<section id="lotlip-figure">\n'
    if png is None:
        return head + ("<h2>Figures</h2>\n<p>This tier draws no similarity-map figure (config "
                       "<code>paper.figures</code>: none whose runs and benchmark it builds).</p>\n</section>\n")
    caption = caption or Path(png).stem
    return (head + f"<h2>{html.escape(caption)}</h2>\n<figure>\n<img src=\"{png_data_uri(png)}\" "
            f"alt=\"{html.escape(caption, quote=True)}\">\n<figcaption>The data behind it: "
            f"<code>{html.escape(Path(png).with_suffix('.csv').name)}</code> beside the PNG.</figcaption>\n"
            "</figure>\n</section>\n")


def landing_html(claims_csv: str | Path | None = None, table_md: str | Path | None = None,
                 table_title: str | None = None, figure_png: str | Path | None = None,
                 figure_caption: str | None = None) -> str:
    """The landing fragment: claims, headline table, figure, then a heading above Snakemake's job graph."""
    return ('<div id="lotlip-landing">\n<style>' + _LANDING_CSS + "</style>\n"
            + claims_section(claims_csv) + table_section(table_md, table_title)
            + figure_section(figure_png, figure_caption)
            + '<p>Every table, figure and the claims check is listed under <em>Results</em> in the menu.</p>\n'
            '<h2 id="lotlip-jobgraph">Job graph</h2>\n<p>The rules of this run; click one for its code and '
            "settings.</p>\n</div>\n")


def write_landing(out: str | Path, **sections) -> None:
    """Write :func:`landing_html` atomically."""
    write_text(out, landing_html(**sections))


def write_table_page(markdown_path: str | Path, out: str | Path, title: str | None = None) -> None:
    """Write :func:`table_page` atomically."""
    write_text(out, table_page(markdown_path, title))
