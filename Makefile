# Two commands: `make run` and `make test`. Both create .venv when missing and
# install only when the requirement files changed (a stamp file remembers).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run demo test lint fmt bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP_RUN): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import streamlit, pydantic, sqlite_utils, pandas" || (echo "install failed" && exit 1)
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import pytest, hypothesis, talib" || (echo "install failed" && exit 1)
	touch $@ $(STAMP_RUN)

## run: the app on the embedded default (simulated market, paper trading, no key, no network);
## strategies marked running resume when it starts, before any browser connects
run: $(STAMP_RUN)
	$(BIN)/python -m strategy_agent app --host 127.0.0.1 --port 8501

## demo: the headless engine for 200 cycles, then the report
demo: $(STAMP_RUN)
	$(BIN)/python -m strategy_agent run --cycles 200 --db data/demo.db
	$(BIN)/python -m strategy_agent report --db data/demo.db

## test: lint, types, then every test (browser tests when Chromium is present)
test: $(STAMP_DEV)
	$(BIN)/ruff check strategy_agent tests bench app.py app_pages
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP_DEV)
	$(BIN)/ruff check strategy_agent tests bench app.py app_pages
	$(BIN)/ruff format --check strategy_agent tests bench app.py app_pages
	$(BIN)/mypy

fmt: $(STAMP_DEV)
	$(BIN)/ruff format strategy_agent tests bench app.py app_pages
	$(BIN)/ruff check --fix strategy_agent tests bench app.py app_pages

## bench: every benchmark, printed (the first run fills the LLM response cache of
## bench/replay.py --llm in data/bench: a few minutes against the fake LLM server)
bench: $(STAMP_DEV)
	$(BIN)/python bench/replay.py --baseline --llm
	$(BIN)/python bench/vs_backtesting_py.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/prompt_tokens.py
	$(BIN)/python bench/ui_pages.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
