# LeadLens: `make demo` and `make test` work on a fresh clone with only Python 3.11 installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOME_DIR := $(or $(LEADLENS_HOME),.leadlens)
DEMO_DIR ?= $(HOME_DIR)/demo-crm
DEMO_KEY := $(HOME_DIR)/api-key

.DEFAULT_GOAL := help
.PHONY: help venv demo test browser lint bench mlflow-ui clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "LeadLens needs Python 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install LeadLens with dev extras

demo: $(STAMP) ## Simulate a demo CRM, ingest it, train and promote the models, flag reps, serve
	$(BIN)/leadlens simulate --out $(DEMO_DIR)
	$(BIN)/leadlens ingest --leads $(DEMO_DIR)/leads.csv --activities $(DEMO_DIR)/activities.csv --reps $(DEMO_DIR)/reps.csv
	$(BIN)/leadlens summary
	$(BIN)/leadlens reps --metrics-only --top 5
	$(BIN)/leadlens train
	$(BIN)/leadlens promote
	$(BIN)/leadlens models
	$(BIN)/leadlens reps --flagged-only
	@test -f $(DEMO_KEY) || $(BIN)/python -c "import pathlib, secrets; p = pathlib.Path('$(DEMO_KEY)'); p.write_text(secrets.token_urlsafe(32) + '\n'); p.chmod(0o600)"
	@echo ""
	@echo "Demo API key (in $(DEMO_KEY)): $$(cat $(DEMO_KEY))"
	@echo "Dashboard: http://127.0.0.1:3000/ (paste the key once).  Ctrl-C stops the service."
	@echo "API, from another terminal:"
	@echo "  curl -s -H \"Authorization: Bearer $$(cat $(DEMO_KEY))\" -H 'content-type: application/json' \\"
	@echo "       -d '{\"leads\": [{\"lead_id\": \"L000002\"}], \"explain\": 3}' http://127.0.0.1:3000/score"
	LEADLENS_API_KEYS_FILE=$(DEMO_KEY) $(BIN)/leadlens serve

test: $(STAMP) browser ## Run the test suite (installs headless Chromium for the browser tests)
	$(BIN)/python -m pytest -q

browser: ## Install Debian's chromium and chromium-driver when missing (browser tests)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing chromium and chromium-driver (Debian packages) for the browser tests"; \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }; fi

lint: $(STAMP) ## Static checks: ruff (style, docstrings, complexity, security) and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP) ## Run every benchmark in bench/ (figures appended to bench/results.jsonl)
	@set -e; for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

mlflow-ui: $(STAMP) ## Open the MLflow UI on the embedded store (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(or $(LEADLENS_HOME),.leadlens))/mlflow.db --host 127.0.0.1 --port 5000

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) .leadlens
