# One way to set up, one way to test. Every target installs what it needs.
#   make test      lint + sanity + unit + integration + molecule
#   make demo      the whole install rehearsed locally (make demo-clean removes it)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
MOLECULE_SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.tmp/collections
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv sandbox host-deps lint sanity unit integration molecule test demo demo-clean bench bench-inventory bench-demo bench-scale build clean

help:
	@echo "make test   - everything CI runs (lint, sanity, unit, integration, molecule)"
	@echo "make demo   - the whole install rehearsed locally (emulated AWS + local hosts); make demo-clean"
	@echo "make venv | lint | sanity | unit | integration | molecule | build | clean"

$(STAMP): requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

venv: $(STAMP)
	$(BIN)/python -m tests.sandbox.cli setup

sandbox: venv host-deps
	$(BIN)/python -m tests.sandbox.cli base-image

host-deps:
	bash tests/sandbox/bin/host-deps.sh

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ruff check .
	# A private HOME: a copy of this collection installed under ~/.ansible (Molecule
	# does that) would otherwise shadow the checkout being linted.
	mkdir -p .tmp/lint-home && HOME=$(CURDIR)/.tmp/lint-home $(BIN)/ansible-lint --profile production --offline

sanity: venv
	bash tests/sandbox/bin/sanity.sh

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: sandbox
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

molecule: sandbox
	@set -e; for s in $(MOLECULE_SCENARIOS); do \
	  echo "=== molecule scenario $$s"; start=$$(date +%s); \
	  $(BIN)/molecule test -s $$s; \
	  echo "=== molecule scenario $$s passed in $$(( $$(date +%s) - start ))s"; \
	done

# Integration and Molecule run side by side (-j2): both mostly wait on containers, and one
# after the other they would not fit CI's 90 minutes. -O keeps each one's output together.
test: lint sanity unit
	$(MAKE) --no-print-directory -j2 -O integration molecule

build: venv
	$(BIN)/ansible-galaxy collection build --force --output-path .tmp/dist

demo: sandbox
	$(BIN)/python -m tests.sandbox.demo up

demo-clean:
	-$(BIN)/python -m tests.sandbox.demo clean

bench: bench-inventory bench-demo bench-scale

bench-inventory: venv
	$(BIN)/python tests/bench/bench_inventory.py

# make demo first vs second run, and 1 vs 8 Nomad clients (tests/bench/bench_demo.py)
bench-demo: sandbox
	$(BIN)/python -m tests.bench.bench_demo

# scale.yml 1 -> 8 clients vs configure_hosts.yml on 7 (tests/bench/bench_fleet_scale.py)
bench-scale: sandbox
	$(BIN)/python -m tests.bench.bench_fleet_scale

clean:
	-$(BIN)/python -m tests.sandbox.cli clean-hosts
	rm -rf .tmp .pytest_cache
