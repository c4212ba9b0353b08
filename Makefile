# explainreg: `make demo` runs the main job, `make test` runs the tests, `make docs` builds the site. Each sets itself up in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned (constraints.txt) and installed first, so no newer CUDA build is pulled in by a dependency.
TORCH_SPEC ?= torch==2.13.0
# Tests read the real data sets beside the project unless $$EXPLAINREG_DATA says otherwise.
TEST_DATA ?= $(abspath ../shared/data)
DEMO_DATA := $(if $(EXPLAINREG_DATA),,$(if $(wildcard ../shared/data/mnist),--data-root ../shared/data))

.PHONY: install demo test test-all bench docs clean

$(BIN)/.installed: pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -c constraints.txt -e ".[test,lightning,ray,hf]"
	touch $@

install: $(BIN)/.installed

# The main job: the explanation-constraints study in quick mode (a few minutes on 2 CPU cores);
# it prints where the report is. The full study: explainreg study constraints --dataset mnist
demo: install
	$(BIN)/explainreg study constraints --quick --out results/constraints-mnist-quick $(DEMO_DATA)

# EXPLAINREG_REQUIRE_OPTIONAL: the Ray executor tests fail, not skip, when ray is missing
test: install
	EXPLAINREG_REQUIRE_OPTIONAL=1 EXPLAINREG_DATA="$${EXPLAINREG_DATA:-$(TEST_DATA)}" $(BIN)/python -m pytest -q -m "not slow"

# the whole suite, the slow tests included (kill -9 resumes, Ray grid, full quick studies, torchrun resume)
test-all: install
	EXPLAINREG_REQUIRE_OPTIONAL=1 EXPLAINREG_DATA="$${EXPLAINREG_DATA:-$(TEST_DATA)}" $(BIN)/python -m pytest -q

# The documentation site, warnings as errors, its examples executed on the data in $$EXPLAINREG_DATA:
# docs/_build/html/index.html
$(BIN)/.docs-installed: $(BIN)/.installed
	$(BIN)/pip install -q -c constraints.txt -e ".[docs,hf]"
	touch $@

docs: $(BIN)/.docs-installed
	EXPLAINREG_DATA="$${EXPLAINREG_DATA:-$(TEST_DATA)}" OMP_NUM_THREADS=1 MPLBACKEND=Agg \
		$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: install
	$(BIN)/python benchmarks/step_overhead.py --data-root "$${EXPLAINREG_DATA:-$(TEST_DATA)}"

clean:
	rm -rf $(VENV) runs .pytest_cache docs/_build docs/gallery
