# The two commands a newcomer needs: `make run` and `make test`. Everything else is set-up they
# call. A second run reuses .venv (the stamp file changes only when pyproject.toml does).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format install weights clean sandbox browser

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

# The browser tests drive Debian's Chromium through its driver; install both when missing and
# we may (root with apt-get), else say how.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver (the browser tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "chromium is missing: install it (Debian/Ubuntu: sudo apt-get install chromium chromium-driver)"; exit 1; fi

weights: $(STAMP)
	@$(PY) -m engine.weights fetch

# Candidate code runs under bubblewrap; install it when missing and we may (root with apt-get),
# else say how. Without it the app starts only with DEBUG=1, which grades unsandboxed and says
# so on every verdict.
sandbox:
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing bubblewrap (the grader's sandbox)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else echo "bubblewrap (bwrap) is missing: install it (Debian/Ubuntu: sudo apt-get install bubblewrap);" \
		"until then the app starts only with DEBUG=1, grading unsandboxed"; fi

# One Django start prepares (migrate, bank, demo account) and serves: a warm run is quicker.
run: install weights sandbox
	$(PY) manage.py serve --prepare

# Two test processes (pytest-xdist): much of the suite waits on live workers, sandboxes and the
# browser, so a second process fills that wait. Tests go to whichever process is free, so a
# module-scoped live worker or browser may start in both. TEST_PROCESSES=0 runs in one process.
TEST_PROCESSES ?= 2

test: install weights sandbox browser
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist load $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/ .pytest_cache .ruff_cache
