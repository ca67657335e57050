"""The Snakemake report in a real browser: ``snakemake --report`` of a tiny run, opened in headless Chromium.

The landing page must show, in this order, the claims verdicts, the headline table (Table 2's analog), the Fig. 1
maps and then the job graph; every result of the report (each table page, the claims page, each figure) must
render when opened from the menu as a reader would, with no broken image. The last test breaks the landing page
(a section dropped, the figure pointed at a missing file, a PNG cut short) and checks that these checks catch it.

Needs Chromium (``.ci/browser/install.sh`` as root on Debian, or ``LOTLIP_CHROMIUM=/path/to/chrome``) and
playwright (the ``test`` extra); without either the tests are skipped, naming what is missing (and CI, with
``LOTLIP_NO_SKIPS=1``, fails).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lotlip.report.landing import SECTIONS
from tests.conftest import REPO, env_with_bin, run_child, snakemake_cmd

TIER = [str(REPO / "config" / "config.yaml"), str(REPO / ".test" / "config" / "config.yaml"),
        str(REPO / ".test" / "config" / "report_browser.yaml")]
# what the tier's report holds: every table as a page, the claims page, the figure (.test/config/report_browser.yaml)
EXPECTED = {"results/report/table_long_texts.html", "results/report/table_long_retrieval.html",
            "results/report/table_dataset_stats.html", "results/report/claims.html",
            "results/figures/fig1_similarity_maps.png"}
FIRST_SCREEN = {"width": 1280, "height": 800}  # a laptop window: what a reader sees before scrolling
TALL = {"width": 1280, "height": 2400}  # the whole landing page at once (Snakemake's panes scroll inside the window)
TIMEOUT_MS = 30_000


def chromium() -> str | None:
    """The Chromium executable: ``$LOTLIP_CHROMIUM``, else Debian's headless shell or full browser on PATH."""
    for name in (os.environ.get("LOTLIP_CHROMIUM"), "chromium-headless-shell", "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    if path is None:
        pytest.skip("no Chromium to open the report in: run .ci/browser/install.sh as root (Debian), or set "
                    "LOTLIP_CHROMIUM to a Chrome/Chromium executable")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=path, timeout=60_000)
        yield chrome
        chrome.close()


def snakemake(workdir: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    env = env_with_bin()
    cmd = [*snakemake_cmd(workdir), *args,
           "--configfile", *TIER]
    return run_child(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def make_report(workdir: Path, out: Path) -> Path:
    done = snakemake(workdir, "--report", str(out), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def built(browser, tmp_path_factory) -> Path:
    """The tiny tier, run once for this module (after the browser is known to exist): its working directory."""
    work = tmp_path_factory.mktemp("report_run")
    done = snakemake(work, "all", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def report(built) -> Path:
    return make_report(built, built / "results" / "report.html")


def open_report(browser, path: Path, viewport: dict):
    """A page showing the report once the app has drawn the job graph; uncaught script errors are collected."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_selector("div#rulegraph svg, div#rulegraph canvas")  # vega draws the job graph last
    return page, errors


# An image is broken when it did not load (not complete, or no pixels: a missing file, bytes that are no image).
# Chromium also draws a PNG cut short, as far as its data goes, with its full size: an embedded PNG (our figures,
# opaque: matplotlib's white background) whose bottom row of pixels is not drawn counts as broken too.
_BROKEN_JS = """els => els.filter(i => {
    if (!(i.complete && i.naturalWidth > 0)) return true;
    if (!i.src.startsWith('data:image/png')) return false;
    const canvas = document.createElement('canvas');
    canvas.width = i.naturalWidth;
    canvas.height = 1;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(i, 0, i.naturalHeight - 1, i.naturalWidth, 1, 0, 0, i.naturalWidth, 1);
    const px = ctx.getImageData(0, 0, i.naturalWidth, 1).data;
    for (let k = 3; k < px.length; k += 4) if (px[k] === 0) return true;
    return false;
}).map(i => i.src.startsWith('data:') ? i.src.slice(0, 40) + '...' : i.src)"""


def broken_images(page, selector: str = "img") -> list[str]:
    """Images matching ``selector`` that are broken (see ``_BROKEN_JS``), by their source."""
    return page.eval_on_selector_all(selector, _BROKEN_JS)


def landing_problems(page) -> list[str]:
    """What is wrong with the landing page: a missing or hidden section, sections out of order, a broken image."""
    problems, tops = [], []
    for sid in SECTIONS:
        section = page.locator(f"#{sid}")
        if section.count() != 1 or not section.is_visible():
            problems.append(f"landing section #{sid} is missing or hidden")
            continue
        tops.append((section.bounding_box()["y"], sid))
    tops.append((page.locator("div#rulegraph").bounding_box()["y"], "the job graph"))
    if tops != sorted(tops):
        problems.append(f"landing sections out of order: {[sid for _, sid in tops]}")
    if page.locator("#lotlip-figure img").count() == 0:
        problems.append("no figure on the landing page")
    problems += [f"broken image on the landing page: {src}" for src in broken_images(page, "#lotlip-landing img")]
    return problems


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _check_png(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 30_000, "a near-empty screenshot"
    with Image.open(path) as img:
        assert img.size == size
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 20)) > 200, "a screenshot of a blank page"


@pytest.mark.slow
def test_landing_page_shows_verdicts_table_and_maps_before_the_job_graph(browser, built, report, tmp_path):
    page, errors = open_report(browser, report, TALL)
    assert landing_problems(page) == []
    assert page.locator("#lotlip-claims").bounding_box()["y"] < FIRST_SCREEN["height"] / 2  # seen first

    claims = _rows(built / "results" / "claims.csv")
    assert page.locator("#lotlip-claims .verdict").all_inner_texts() == [c["verdict"] for c in claims]
    assert page.locator("#lotlip-claims").inner_text().count(claims[0]["text"]) == 1
    table = page.locator("#lotlip-headline-table")
    assert table.locator("h2").inner_text().startswith("Table 2 analog")
    assert table.locator("tbody tr").all_inner_texts()[0].startswith("short captions only")
    assert table.locator("tbody tr").count() == len(_rows(built / "results" / "table_long_texts.csv"))
    assert page.locator("#lotlip-figure h2").inner_text().startswith("Fig. 1 analog")

    shot = tmp_path / "landing.png"
    page.screenshot(path=shot)
    _check_png(shot, (TALL["width"], TALL["height"]))
    assert broken_images(page) == [] and errors == []


@pytest.mark.slow
def test_every_table_and_figure_renders_from_the_menu(browser, report, tmp_path):
    page, errors = open_report(browser, report, TALL)
    categories = page.evaluate("categories")
    shown = set()
    for category in sorted(categories):
        page.locator("nav a", has_text=re.compile(rf"^{re.escape(category)}$")).click()  # the menu entry
        for path in (p for paths in categories[category].values() for p in paths):
            page.locator("nav tr", has_text=path).locator("a").first.click()  # its view (eye) button
            result = page.evaluate("p => results[p]", path)
            if result["mime_type"].startswith("image/"):  # shown as an <img> in the content pane
                page.wait_for_function("src => [...document.images].some(i => i.src === src && i.complete)",
                                       arg=result["data_uri"])
                width = page.evaluate("src => [...document.images].find(i => i.src === src).width",
                                      result["data_uri"])
                assert broken_images(page) == [] and width > 100, path
            else:  # a table page, shown in an <iframe>
                assert result["mime_type"] == "text/html", path
                page.wait_for_function("src => [...document.querySelectorAll('iframe')].some(f => f.src === src)",
                                       arg=result["data_uri"])
                assert page.locator("iframe").count() == 1, path
                rows = page.frame_locator("iframe").locator("table tbody tr")
                rows.first.wait_for()
                assert rows.first.is_visible(), path
                assert page.locator("iframe").bounding_box()["height"] > 300, path
            page.screenshot(path=tmp_path / f"{Path(path).stem}.png")
            shown.add(path)
        page.locator("nav ol a", has_text="Results").click()  # the breadcrumb back to the menu
    assert shown == EXPECTED
    assert errors == []


@pytest.mark.slow
def test_a_broken_landing_page_fails_these_checks(browser, built, tmp_path):
    landing = built / "results" / "report" / "landing.html"
    original = landing.read_text()
    png = re.search(r'<img src="(data:image/png;base64,[^"]*)"', original).group(1)
    broken = original.replace('<section id="lotlip-claims">', '<section id="dropped">', 1).replace(
        f'<img src="{png}"', f'<img src="figures/missing.png"><img src="{png[:20_000]}"')  # + one cut short
    assert '<section id="lotlip-claims">' not in broken and "missing.png" in broken
    try:
        landing.write_text(broken)
        report = make_report(built, tmp_path / "report.html")
    finally:
        landing.write_text(original)
    page, _ = open_report(browser, report, FIRST_SCREEN)
    problems = landing_problems(page)
    assert problems == ["landing section #lotlip-claims is missing or hidden",
                        "broken image on the landing page: " + (tmp_path / "figures" / "missing.png").as_uri(),
                        "broken image on the landing page: " + png[:40] + "..."]
