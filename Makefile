# Two commands do everything on a fresh machine (Python 3.11 + pip):
#   make run    install into .venv, then build every table of the embedded default (`snakemake --cores 2 all`)
#   make test   install into .venv (with test extras), then lint and run the test suite
# Both are idempotent: the install step re-runs only when pyproject.toml changes.

PYTHON ?= python3.11
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin
I2D_VENV ?= .venv-img2dataset
# img2dataset (real training images, world.source: img2dataset) pins webdataset < 0.3: it lives in its own venv,
# appended to PATH so that `img2dataset` resolves there while python/snakemake/lotlip resolve in $(VENV)
export PATH := $(abspath $(BIN)):$(PATH):$(abspath $(I2D_VENV))/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
I2D_STAMP := $(I2D_VENV)/.installed-$(shell sha1sum workflow/envs/img2dataset.txt | cut -c1-12)

.PHONY: install img2dataset run test test-fast lint services browser clean slurm-up slurm-down

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

$(I2D_STAMP): workflow/envs/img2dataset.txt
	test -x $(I2D_VENV)/bin/python || $(PYTHON) -m venv $(I2D_VENV)
	$(I2D_VENV)/bin/python -m pip install --quiet -r workflow/envs/img2dataset.txt
	rm -f $(I2D_VENV)/.installed-*
	touch $@

img2dataset: $(I2D_STAMP)  # the downloader of real training images, in its own venv

run: install
	$(BIN)/snakemake --cores $(CORES) all

lint: install
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

test: install img2dataset lint services
	$(BIN)/pytest -q --durations=15

test-fast: install  # the quick subset for local work: every test not marked slow (no services needed)
	$(BIN)/pytest -q -m "not slow"

# as root on Debian: a one-node Slurm cluster for tests/workflow/test_slurm_pipeline.py and headless Chromium for
# tests/report/test_report_browser.py (each skipped without it)
services:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then .ci/slurm/start.sh && .ci/browser/install.sh; \
	else echo "not root on Debian: Slurm and browser tests will be skipped"; fi

browser:  # headless Chromium for tests/report/test_report_browser.py (root, Debian)
	.ci/browser/install.sh

slurm-up:  # a one-node Slurm cluster on this machine (root, Debian): enables tests/workflow/test_slurm_pipeline.py
	.ci/slurm/start.sh

slurm-down:
	.ci/slurm/stop.sh

clean:
	rm -rf results resources logs .snakemake
