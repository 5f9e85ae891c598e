# The two commands of the README:  `make demo`  and  `make test`.
# Both set everything up first (virtual environment, torch CPU wheel first, then the project).
# Override TORCH_SPEC on GPU machines, e.g. `make setup TORCH_SPEC="torch==2.13.0"` with your CUDA index.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.mmupt-installed

export PREFECT_HOME ?= $(CURDIR)/.mmupt-cache/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export TORCH_EXTENSIONS_DIR ?= $(HOME)/.cache/mmupt/torch_extensions
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: anything else lets pip pick a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# DeepSpeed's CPU collective op, compiled once here (~30 s) rather than inside the first job.
	mkdir -p "$(TORCH_EXTENSIONS_DIR)"
	$(BIN)/python -m stages.train.ops
	touch $(STAMP)

demo: setup
	mkdir -p "$(PREFECT_HOME)" "$(TORCH_EXTENSIONS_DIR)"
	$(BIN)/mmupt demo --out runs/demo

test: setup
	mkdir -p "$(PREFECT_HOME)" "$(TORCH_EXTENSIONS_DIR)"
	$(BIN)/python -m pytest -q

# Issue 15's performance harness (~25 min, idle machine; needs `make demo` first): benchmarks/results/.
bench: setup
	bash benchmarks/perf.sh

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf runs .mmupt-cache .pytest_cache
