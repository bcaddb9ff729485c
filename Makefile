# Two commands set up and run everything on a fresh clone (only Python 3.11 and make needed):
#   make demo   create .venv, install, migrate the embedded SQLite database, load the demo, serve the site
#   make test   create/update .venv, lint, run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test install lint serve

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (the CPU torch build is for 3.11); set PYTHON=/path/to/python3.11"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The demo command runs the whole story (idempotent), then serves the site in the same process with the fake
# Stripe server still running; Ctrl-C stops both. DEMO_ARGS passes options, e.g. DEMO_ARGS=--threads=1.
DEMO_ARGS ?=
demo: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=1 ROYALTIES_SITE_URL=$${ROYALTIES_SITE_URL:-http://$(HOST):$(PORT)} $(PY) manage.py demo --serve --host $(HOST) --port $(PORT) $(DEMO_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

test: $(STAMP) lint
	$(PY) -m pytest $(PYTEST_ARGS)
