# Two commands for a new user (README):  make demo   and   make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
# Snakemake's `gpu` resource for `make demo`: the machine's GPUs, or on a machine without one as
# many as CORES (the GPU rules then run on the CPU, and nothing is gained by running one at a time).
GPUS   ?= $(shell n=$$(nvidia-smi -L 2>/dev/null | grep -c '^GPU'); [ "$${n:-0}" -gt 0 ] && echo $$n || echo $(CORES))
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install install-sam2 demo demo-small demo-honest demo-workshop test lint lock clean-demo

install: $(VENV)/.installed

# Install exactly the locked versions, then the project itself (editable, no dependency resolution).
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The optional SAM 2 backend (temporal.propagate.backend: sam2) and its equivalence test's package.
install-sam2: install
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --quiet --no-build-isolation -r requirements-sam2.txt

demo: install
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --resources gpu=$(GPUS)
	@echo "results table: results/demo/report/table.md (page: results/demo/report/index.html)"

# The small run (about 2 minutes on 2 cores): the same DAG on 40 demo clips (config/demo_small.yaml).
demo-small: install
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --resources gpu=$(GPUS) \
		--configfile config/config.yaml config/demo_small.yaml
	@echo "results table: results/demo-small/report/table.md"

# The honest protocol (about as long as the demo): annotated frames get no proposals, only
# propagated masks score there (config/demo_honest.yaml, docs/temporal.md).
demo-honest: install
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --resources gpu=$(GPUS) \
		--configfile config/config.yaml config/demo_honest.yaml
	@echo "results table: results/demo-honest/report/table.md"

# The full demo on the workshop style (about as long as the demo): the kitchen style's settings
# judged on held-out data of another look (config/demo_workshop.yaml, docs/demo.md).
demo-workshop: install
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --resources gpu=$(GPUS) \
		--configfile config/config.yaml config/demo_workshop.yaml
	@echo "results table: results/demo-workshop/report/table.md"

# Two pytest-xdist workers, whole test files each (module fixtures run once); the end-to-end runs
# are collected first (tests/conftest.py).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-resolve the lock from pyproject.toml in a scratch venv (needs the package registries).
lock:
	rm -rf /tmp/nvos-lock && $(PYTHON) -m venv /tmp/nvos-lock
	/tmp/nvos-lock/bin/python -m pip install --quiet --upgrade pip
	/tmp/nvos-lock/bin/python -m pip install --quiet ".[dev]" snakemake-executor-plugin-slurm
	( echo "# Locked dependency set of nvos (make lock). Linux x86_64, Python 3.11."; \
	  /tmp/nvos-lock/bin/python -m pip freeze --exclude-editable | grep -v '^nvos' ) > requirements.lock

clean-demo:
	rm -rf results/demo results/demo-small results/demo-honest results/demo-workshop
