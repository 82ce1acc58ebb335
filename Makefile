# The README's two commands: `make demo` and `make test`. Each installs what it needs into .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Models ship inside PyPI packages; nothing may reach a model hub at run time.
export HF_HUB_OFFLINE := 1
export CRMAGENT_DUCKDB_PATH ?= $(CURDIR)/data/crmagent.duckdb
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
DEMO_MONTH ?= 2025-04
DEMO_NEXT ?= 2025-05
DEMO_LOGS ?= 1000000

.PHONY: demo test dev bench install lock clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every transitive version tested here, so a fresh machine gets the same set.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The loop over two months: month 1's rewrites auto-approved by the policy and deployed; month 2 generated with
# those experiments sent by their assignment rule; month 2's refresh measures them first (its report opens with it).
demo: install
	$(BIN)/crmagent refresh --month $(DEMO_MONTH) --synthetic --logs $(DEMO_LOGS) --auto-approve
	$(BIN)/crmagent generate --month $(DEMO_NEXT) --logs $(DEMO_LOGS) --deploy-from $(DEMO_MONTH)
	$(BIN)/crmagent refresh --month $(DEMO_NEXT) --auto-approve

test: install chromium
	$(BIN)/python -m pytest

# The UI test screenshots the asset graph with Debian's chromium (headless); install it if missing.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The Dagster UI (`dg dev`, which supersedes `dagster dev`) on :3000 and the review page on :3001; Ctrl-C stops both.
dev: export CRMAGENT_SYNTHETIC ?= 1
dev: install
	$(BIN)/python -c "from crmagent_dagster.cli import ensure_dagster_home; ensure_dagster_home()"
	$(BIN)/crmagent review --host 127.0.0.1 --port 3001 & review=$$!; trap "kill $$review" EXIT; \
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg dev -h 127.0.0.1 -p 3000

# `make bench BIG=1` adds a 30M-log month on DuckDB (about 15 min); the Spark column needs Java 17+.
bench: install
	$(BIN)/python bench/bench_pipeline.py --logs 3000000 $(if $(BIG),--big)
	$(BIN)/python bench/bench_llm.py
	$(BIN)/python bench/bench_long_lines.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/quality.py --faithfulness

# Re-pin after changing dependencies in pyproject.toml (then commit constraints.txt).
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) data
