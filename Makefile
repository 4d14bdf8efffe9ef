# aiwfe.rollback - the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help setup images demo test bench sanity units lint molecule chaos engine20 build clean

help:
	@echo "make demo   - set up, deploy the reference stack, break it, roll it back (local inventory)"
	@echo "make test   - set up, then sanity, units, ansible-lint, galaxy build, molecule on the real engine"
	@echo "make bench  - benchmarks, side by side with the runbook's own commands (not part of make test)"
	@echo "             AIWFE_BENCH_ONLY=db|rollback make bench - one part (rollback: time to recovery vs runbook section 1)"
	@echo "             AIWFE_BENCH_ONLY=site make bench - rollback_full.yml from each broken release vs runbook section E, by phase"
	@echo "             AIWFE_BENCH_ONLY=fleet make bench - rollback_full.yml on 1, 5 and 10 SSH hosts at once vs the bare pipeline (not while molecule/fleet runs)"
	@echo "make setup  - only the set-up (idempotent; every other target runs it)"
	@echo "make sanity|units|lint|build|molecule - one test stage"
	@echo "make chaos  - the fault-injection scenarios alone (chaos, migration_faults; part of make molecule)"
	@echo "make engine20 - the quick rollback on Debian 12's Docker 20.10 alone (part of make molecule; docs/engines.md)"
	@echo "make clean  - remove the reference stack containers of the demo (keeps volumes), build/ and .cache/"

setup:
	@bash scripts/setup.sh

images: setup
	@bash examples/reference_stack/build-images.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	@bash scripts/test.sh

bench: setup
	@$(VENV)/bin/python scripts/bench.py

sanity units lint build molecule chaos engine20: setup
	@bash scripts/test.sh $@

clean:
	@bash scripts/demo.sh --clean || true
	rm -rf build .cache
