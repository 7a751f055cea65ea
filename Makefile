# Everything a fresh Debian machine needs is installed by these targets.
#   make test   - system packages, .venv, editable install, lint and type checks, the whole test suite
#   make lint   - ruff (lint and format check) and mypy, as CI runs them
#   make demo   - the local MySQL pair with a sample database, Airflow, the two-way DAG (RESET=1: start over)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := mariadb-server mariadb-client pkg-config libmariadb-dev gcc python3-dev sysbench chromium
PYTEST_ARGS ?=

.PHONY: test test-external lint deps venv demo demo-stop demo-status pair-start pair-stop bench clean

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml | deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: deps $(VENV)/.installed

# --basetemp: the suite's servers live in this repo's own temp folder, so another pytest run on the
# machine (which prunes /tmp/pytest-of-*) can never delete a running server's data directory.
# The tests mostly wait on servers and on Airflow: PYTEST_WORKERS processes (pytest-xdist) run them at once,
# each with its own server pair and Airflow home (worksteal: an idle worker takes tests queued for a busy one, so
# the long end-to-end tests do not end up in one worker's queue). PYTEST_WORKERS=0 runs them in this one process.
PYTEST_WORKERS ?= 3
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: venv lint
	mkdir -p .dts-local
	$(PY) -m pytest --basetemp="$(CURDIR)/.dts-local/pytest" -n $(PYTEST_WORKERS) --dist worksteal --durations=20 $(PYTEST_ARGS)

# The suite against two existing servers (e.g. MySQL 8.4): every test that does not start, stop or kill
# servers; one test at a time (they share the two servers). Put passwords in files, not on the command line:
#   make test-external DTS_TEST_EXTERNAL_A='mysql://root@127.0.0.1:3307?password_file=.dts-local/a.pw' \
#        DTS_TEST_EXTERNAL_B='mysql://root@127.0.0.1:3308?password_file=.dts-local/b.pw' DTS_TEST_EXTERNAL_DROP_DATABASES=1
test-external: venv
	@test -n "$$DTS_TEST_EXTERNAL_A" -a -n "$$DTS_TEST_EXTERNAL_B" || { \
	  echo "set DTS_TEST_EXTERNAL_A and DTS_TEST_EXTERNAL_B (README: Testing against your own servers)"; exit 2; }
	mkdir -p .dts-local
	$(PY) -m pytest --basetemp="$(CURDIR)/.dts-local/pytest-external" -n 0 -rs $(PYTEST_ARGS)

pair-start: venv
	$(PY) -m airflow_provider_dts.localpair start --dir .dts-local/pair

pair-stop:
	@test -x $(PY) && $(PY) -m airflow_provider_dts.localpair stop --dir .dts-local/pair || true

# make demo keeps an existing demo (servers, data, Airflow runs); make demo RESET=1 starts over
demo: venv
	$(PY) -m airflow_provider_dts.demo start $(if $(RESET),--reset)

demo-status:
	@$(PY) -m airflow_provider_dts.demo status

demo-stop:
	@test -x $(PY) && $(PY) -m airflow_provider_dts.demo stop || true

bench: venv
	$(PY) bench/full_sync.py
	$(PY) bench/incremental.py

clean: demo-stop pair-stop
	rm -rf $(VENV) .dts-local
