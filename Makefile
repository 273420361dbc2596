# Two commands do all the set-up on a fresh checkout:
#   make demo   # a real audio + video sweep (Perceiver IO) on the synthetic CREMA-D stand-in, then the leaderboard
#   make test   # the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

# pip byte-compiles what it installs one file at a time (a third of the install's time, most of
# it torch); compileall does the same on every core. The bytecode must be there: with
# PYTHONDONTWRITEBYTECODE set, as on our CI machines, every process would compile torch anew.
# Compiling is only a speed-up, so a file it cannot compile does not fail the install ("-").
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e ".[test]"
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
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
