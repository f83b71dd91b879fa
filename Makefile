# Two entry points on a fresh machine (Python, pip, gcc, git and apt only):
#   make demo   the whole pipeline on generated data into an embedded DuckDB
#   make test   everything the tests need (Debian packages included), then the suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests use (openssl; chromium for the dashboard's browser tests; Orthanc and
# its DICOMweb plugin for the DICOMweb source tests); installed only when a package is missing.
APT_PACKAGES ?= openssl chromium orthanc orthanc-dicomweb

BQEMU  := .venv-bqemu/bin
# the BigQuery emulator of the tests lives in a venv of its own: it needs duckdb 1.5.5 and the
# spatial extension from a wheel (no download), which the project's duckdb pin does not allow
BQEMU_PACKAGES ?= bqemulator==1.4.0 duckdb==1.5.5 duckdb-extensions==1.5.5 duckdb-extension-spatial==1.5.5 numpy pyarrow
LINT   := .venv-lint/bin
# the linters live in a venv of their own: mypy's pathspec and dbt-core's disagree
LINTERS ?= ruff==0.17.6 mypy==2.4.1 import-linter==2.17

.PHONY: demo test install install-test apt bench clean lint bqemu

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dbt,dashboard]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench,dbt,dashboard,bigquery]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

apt:
	@if [ -n "$(APT_PACKAGES)" ]; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	  fi; \
	fi

demo: install
	$(BIN)/cohortdb --warehouse demo-warehouse demo

$(BQEMU)/.installed: Makefile
	$(PYTHON) -m venv .venv-bqemu
	$(BQEMU)/python -m pip install --quiet $(BQEMU_PACKAGES)
	$(BQEMU)/python -c "import duckdb, duckdb_extensions as e; e.import_extension('spatial', con=duckdb.connect())"
	touch $@

bqemu: $(BQEMU)/.installed

$(LINT)/.installed: Makefile
	$(PYTHON) -m venv .venv-lint
	$(LINT)/python -m pip install --quiet $(LINTERS)
	touch $@

# import-linter reads the packages' sources from the checkout (PYTHONPATH), it imports none of them
lint: $(LINT)/.installed
	$(LINT)/ruff check ingest cohortdb dashboards bench tests setup.py
	$(LINT)/mypy
	PYTHONPATH=. $(LINT)/lint-imports

test: apt install-test lint bqemu
	$(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python bench/ingest_dicom.py

clean:
	rm -rf $(VENV) .venv-lint demo-warehouse warehouse .pytest_cache build dist
