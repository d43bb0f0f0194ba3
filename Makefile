# The two commands a newcomer needs: `make run` and `make test`. Everything else is set-up they
# call. A second run reuses .venv (the stamp file changes only when pyproject.toml does).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format install weights bank clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

weights: $(STAMP)
	@if [ -f engine/weights.py ]; then $(PY) -m engine.weights fetch; \
	else echo "model weights: engine/weights.py does not exist yet; skipping"; fi

run: install weights
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_bank
	$(PY) manage.py ensure_demo_user
	$(PY) manage.py serve

test: install weights
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/ .pytest_cache .ruff_cache
