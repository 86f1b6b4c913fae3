# specializer — two commands on a fresh machine:
#   make demo    set up, compile the bundled demo model, run it on the host and in the Cortex-M4 simulator
#   make test    set up, run the test suite (what CI runs)
# Setup is automatic: a virtualenv in .venv (pip install -e .[test]) and, when missing, Debian's Arm toolchain,
# clang and QEMU through apt-get (root, or sudo).

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
APT_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang gcc
JOBS     ?= 2
PYTEST_ARGS ?=

.PHONY: all setup venv toolchain demo test test-all bench clean help

all: test

help:
	@echo "make demo      - set up and run the demo (compile, host run, simulator report)"
	@echo "make test      - set up and run the test suite (CI)"
	@echo "make test-all  - the suite including slow model sweeps"
	@echo "make bench     - benchmarks on every model in ../shared/models (cycles, RAM, flash)"

setup: venv toolchain

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

toolchain:
	@missing=""; \
	command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing="$$missing gcc-arm-none-eabi libnewlib-arm-none-eabi"; \
	command -v clang >/dev/null 2>&1 || missing="$$missing clang"; \
	command -v qemu-system-arm >/dev/null 2>&1 || missing="$$missing qemu-system-arm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing (apt-get)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing ) >/dev/null \
	    || echo "warning: apt-get could not install$$missing; Cortex-M tests will be skipped"; \
	fi

demo: setup
	$(PY) -m specializer.demo

test: setup
	$(PY) -m pytest -n $(JOBS) -q $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -n $(JOBS) -q --runslow $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/run_models.py

clean:
	rm -rf build out .pytest_cache .hypothesis demo_out
