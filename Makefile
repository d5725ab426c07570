# Every set-up step lives here: a fresh clone needs only Python 3.10+ and make.
# `make run`   : set up the venv, fetch ML-100K, print statistics, evaluate the popularity baseline,
#               train a Two-Tower model, export it with a ScaNN index into saved_models/, reload the
#               export from disk and print its top-10 titles for a user.
# `make test`  : set up the venv, check style (ruff) and layering (import-linter), run the whole test suite.
# `make bench` : also install the peer libraries the benchmarks compare against.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test bench clean

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# --brief: one readable line per step (drop it for the figure tables and JSON lines); -v: TensorFlow's logs too.
run: venv
	@$(BIN)/tfrecs --brief data fetch ml-100k
	@$(BIN)/tfrecs --brief data stats ml-100k
	@$(BIN)/tfrecs --brief evaluate --model pop --dataset ml-100k --protocol random-full
	@$(BIN)/tfrecs --brief export --model two_tower --dataset ml-100k --index scann --k 10 --show-user 196

test: venv
	$(BIN)/ruff check tfrecs tests benchmarks pipelines docs/*.py
	$(BIN)/ruff format --check tfrecs tests benchmarks pipelines docs/*.py
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q tests

bench: venv
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"

clean:
	rm -rf $(VENV)
