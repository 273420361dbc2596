# Two commands do all the set-up on a fresh checkout:
#   make demo   # a real audio + video sweep (Perceiver IO) on the synthetic CREMA-D stand-in, then the leaderboard
#   make test   # the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

# --no-compile: byte-compiling all of torch and its CUDA packages is a third of the install's
# time; Python compiles the modules a run actually imports, once, on first use instead.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/avbench sweep perceiver-cremad --preset cpu --synthetic --workers 2
	$(BIN)/avbench leaderboard

test: $(STAMP)
	$(BIN)/ruff check avbench tests benchmarks
	$(BIN)/ruff format --check avbench tests benchmarks
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check avbench tests benchmarks
	$(BIN)/ruff format --check avbench tests benchmarks

clean:
	rm -rf $(VENV) results/runs results/studies results/cache results/wandb data/synthetic
