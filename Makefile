# The two commands a fresh Debian machine needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian 13's restic, fetched without touching the machine's apt configuration: the
# offsite tests run against it too (restic_versions marker), and the fault suite's.
RESTIC_NEW := .cache/restic-0.18/restic

.PHONY: demo test faults lint bench restic restic-0.18 chromium venv clean install uninstall lock check-wheels
# Where `make install` puts syncer (the tests point them into a scratch folder).
PREFIX ?= /opt/syncer
BINDIR ?= /usr/local/bin
SYSCONFDIR ?= /etc/syncer

demo: venv restic
	$(BIN)/python demo/run_demo.py

test: venv-test restic restic-0.18 chromium
	$(BIN)/ruff check .
	$(BIN)/python packaging/check_wheels.py
	$(BIN)/python -m pytest -q -m "not faults" -n auto --dist loadfile
	TEST_RESTIC=$(abspath $(RESTIC_NEW)) $(BIN)/python -m pytest -q -m "restic_versions and not faults" -n auto --dist loadfile

# The full fault-injection suite (kills, a flaky uplink, full disks, races, fuzzing),
# then its figures: fault, times injected, recovered without help, bytes lost.
faults: venv-test restic restic-0.18
	$(BIN)/python -m pytest -q -m faults tests/faults
	SYNCER_FAULTS_APPEND=1 TEST_RESTIC=$(abspath $(RESTIC_NEW)) \
	  $(BIN)/python -m pytest -q -m "faults and restic_versions" tests/faults
	$(BIN)/python -m tests.faults.figures

lint: venv-test
	$(BIN)/ruff check .

bench: venv-test restic
	$(BIN)/python bench/run.py
	$(BIN)/python bench/offsite.py
	$(BIN)/python bench/status_page.py
	$(BIN)/python bench/scale.py

restic-0.18: $(RESTIC_NEW)

$(RESTIC_NEW):
	scripts/fetch-restic-trixie.sh $(dir $@)

restic:
	@command -v restic >/dev/null || { \
	  echo "installing restic from Debian's packages"; \
	  $(SUDO) apt-get install -y restic >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y restic; } || \
	  { echo "make: cannot install restic; install it with: apt-get install -y restic" >&2; exit 1; }; }

# The status page's tests render it in headless Chromium (Debian's package); when it
# cannot be installed, those tests skip and say so, the rest of the suite runs.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium from Debian's packages"; \
	  $(SUDO) apt-get install -y chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y chromium; } || \
	  echo "make: cannot install chromium (apt-get install -y chromium); the browser tests will skip" >&2; }

# python3-venv is a separate Debian package; install it when venv creation fails.
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  $(SUDO) apt-get install -y python3-venv python3-pip >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y python3-venv python3-pip; }; \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

# Production use on this machine (see README, "Install on the board"): a virtualenv in
# PREFIX from requirements.lock, `syncer` in BINDIR, SYSCONFDIR's folders, restic, shell
# completion. Run again to upgrade; it changes nothing when nothing changed.
install:
	PREFIX=$(PREFIX) BINDIR=$(BINDIR) SYSCONFDIR=$(SYSCONFDIR) PYTHON=$(PYTHON) bash packaging/install.sh

uninstall:
	PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) bash packaging/uninstall.sh

# requirements.lock pins every package `make install` puts on the board, with the hash
# of each of its files. After changing the dependencies in pyproject.toml: `make lock`
# (pip-tools, in a throwaway virtualenv); it pins what the test virtualenv runs, so the
# board gets the versions the tests passed with. `make check-wheels` proves the set
# installs on aarch64 (make test runs it).
lock: venv-test
	$(BIN)/pip freeze --exclude-editable > $(VENV)/tested-versions.txt
	[ -x .venv-lock/bin/pip-compile ] || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q pip-tools; }
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= .venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	  --strip-extras --constraint $(VENV)/tested-versions.txt --output-file requirements.lock \
	  pyproject.toml packaging/build.in

check-wheels: venv-test
	$(BIN)/python packaging/check_wheels.py

clean:
	rm -rf $(VENV) .venv-lock .demo .bench
	TEST_RESTIC=$(abspath $(RESTIC_NEW)) $(BIN)/python -m pytest -q -m "restic_versions and not faults" -n auto --dist loadfile
