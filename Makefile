# The two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean lock

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "sislink needs Python 3.11 or newer"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# The whole flow on the built-in SIS; at a terminal the console then stays up on
# http://127.0.0.1:8000 with printed logins (Ctrl-C stops it). Elsewhere (CI, scripts) it exits.
demo: $(STAMP)
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/sislink demo --serve; else $(BIN)/sislink demo; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy --strict src

# The suite on two processes (pytest-xdist; a module stays on one, so its servers start once).
# The tests' npm packages (tests/*/package-lock.json) are installed first, once, not by two
# processes at the same time.
test: lint
	@for d in tests/oidc_provider tests/browser/axe; do \
	  if [ -f $$d/package-lock.json ] && [ ! -d $$d/node_modules ] && command -v npm >/dev/null; then \
	    (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; fi; done
	$(BIN)/pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Re-pin every dependency (after editing pyproject.toml).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --exclude sislink > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
