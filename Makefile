# One entry point for every part. `make setup` is idempotent and every other target depends on it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(CURDIR)/$(VENV)/bin/python
# Four repositories that share this workspace; each lints and tests from its own folder and pyproject.toml.
PARTS  := shared-config deployment-account infra-repo etl-jobs-repo
APPS   := infra-repo etl-jobs-repo
# The workspace installs every package of the team editable; a lone repository installs them as wheels.
EDITABLE := shared-config deployment-account/library deployment-account infra-repo etl-jobs-repo
CONFIG := $(CURDIR)/shared-config/config.yaml

# The pinned CDK CLI and the venv's tools come first on PATH for every recipe.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
# Spark binds to loopback only: no network exists beyond it, and none is needed.
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(PY)

# Tests marked `long` (a rehearsal, fresh installs, hundreds of jobs, property tests on Spark) leave the
# developer's loop: `make test` deselects them, `make test-long` runs only them, CI runs both.
FAST   := -m "not long"
# Two pytest workers where that measured faster on the standard 2-core machine (BENCHMARKS.md): the deployment
# account's and the infra suites, whose time is synths and emulator starts spread over many modules (92 -> 57 s,
# 33 -> 25 s). Not the ETL suite (its Spark tests share one session; two workers start two JVMs and it ran
# slower, 112 -> 122 s) nor shared-config (too short to gain). A repository alone runs plain pytest.
PARALLEL_deployment-account := -n 2 --dist loadfile
PARALLEL_infra-repo := -n 2 --dist loadfile

.PHONY: help setup lint format test test-long standalone synth rehearse bench lock clean $(addprefix test-,$(PARTS))

help:
	@echo "make rehearse   play the whole lifecycle on an embedded AWS emulator (the main job)"
	@echo "make test       lint + every part's tests, without the long ones (the developer's loop)"
	@echo "make test-long  only the long tests (the dev rehearsal, fresh installs, scale, property tests); CI runs both"
	@echo "make standalone copy each repository alone, install it from its own files, run its checks"
	@echo "make synth      synthesize both CDK apps (offline)"
	@echo "make bench      measure synth, scale, tests, jobs, CDC merge and rehearsal (BENCHMARKS.md)"
	@echo "make setup      create .venv and install pinned Python packages and the pinned CDK CLI"

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt constraints.txt $(addsuffix /pyproject.toml,$(EDITABLE))
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(addprefix -e ,$(EDITABLE))
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	for part in $(PARTS); do (cd $$part && ruff check . && ruff format --check . && mypy); done
	ruff check bench tests scripts && ruff format --check bench tests scripts

format: setup
	ruff check --fix .
	ruff format .

test: lint
	$(foreach part,$(PARTS),(cd $(part) && pytest $(FAST) $(PARALLEL_$(part))) &&) true
	pytest $(FAST) bench tests

# pytest exits 5 when a part has no long test: nothing selected is not a failure here.
test-long: setup
	for part in $(PARTS); do (cd $$part && { pytest -m long || [ $$? -eq 5 ]; }); done
	pytest -m long bench tests

$(addprefix test-,$(PARTS)): test-%: setup
	cd $* && pytest

synth: setup
	for app in $(APPS); do (cd $$app && cdk synth --quiet -c config=$(CONFIG)); done

# Each repository copied alone, installed from its own files and the shared packages' wheels, checked.
standalone: setup
	python scripts/standalone.py

rehearse: setup
	lakeops rehearse --yes

bench: setup
	python bench/run.py

# Re-resolve the full pinned set after editing requirements.txt.
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.txt
	.lock-venv/bin/pip freeze --all --exclude pip | sed '1i # The full resolved set of Python packages, pinned. Regenerate with `make lock` after changing requirements.txt.' > constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) node_modules */cdk.out .pytest_cache .mypy_cache .ruff_cache */.mypy_cache */.ruff_cache
