"""The dataset catalog (config/datasets.yaml) and the real sources that read it: one torch-free module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lotlip.catalog import CATALOG, PATH_SOURCES, SOURCES, CatalogError, load_catalog
from tests.conftest import REPO


def test_real_catalog_loads_and_holds_every_source_dataset():
    assert CATALOG == REPO / "config" / "datasets.yaml"
    catalog = load_catalog()
    needed = {d for src in SOURCES.values() for d in src.datasets}
    assert needed <= set(catalog), needed - set(catalog)
    assert PATH_SOURCES == ("imagenet",) and SOURCES["imagenet"].needs_path
    assert {src.kind for src in SOURCES.values()} == {"long", "short", "zeroshot"}


BAD = {
    "no-datasets": ("files: []\n", "field 'datasets' missing or not a mapping"),
    "entry-not-mapping": ("datasets:\n  dci: 3\n", "datasets.dci: not a mapping"),
    "files-not-list": ("datasets:\n  dci:\n    files: {url: x}\n", "datasets.dci.files: not a list"),
    "spec-not-mapping": ("datasets:\n  dci:\n    files: [x]\n", "datasets.dci.files[0]: not a mapping"),
    "no-url": ("datasets:\n  dci:\n    files: [{dest: a}]\n", "datasets.dci.files[0]: field 'url' missing"),
    "dest-and-extract": ("datasets:\n  dci:\n    files: [{url: u, dest: a, extract_to: b}]\n",
                         "datasets.dci.files[0]: exactly one of 'dest'"),
    "not-yaml": ("datasets: [1, 2\n", "not valid YAML at line 2"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_catalog_is_one_line_naming_file_and_field(case, tmp_path):
    text, expected = BAD[case]
    path = tmp_path / "datasets.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message


def test_a_missing_catalog_is_named(tmp_path):
    with pytest.raises(CatalogError, match=r"nope.yaml: cannot read the catalog"):
        load_catalog(tmp_path / "nope.yaml")


def test_catalog_and_config_import_without_torch():
    """The Snakefile imports both at parse time: neither may pull in torch (nor the catalog requests)."""
    code = ("import sys, lotlip.catalog; light = 'requests' not in sys.modules; import lotlip.config; "
            "print(light, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
