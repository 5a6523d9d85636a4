# Consolidation of a self-hosted stack's PostgreSQL databases into one Supabase
# Postgres. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
COMPOSE := docker compose
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help deps images env venv up down clean preflight rehearsal test test-unit

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

deps: ## install and start Docker Engine + compose plugin + debootstrap (idempotent)
	@bash scripts/deps.sh

images: deps ## build or pull every image (offline stand-ins when no registry answers)
	@bash scripts/images.sh

env: ## create env/*.env with random passwords (never overwrites)
	@python3 scripts/init_env.py env

venv: $(VENV)/.installed ## host virtualenv for the tests and the CLI
$(VENV)/.installed: requirements/*.txt pyproject.toml
	@python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q -U pip
	@$(VENV)/bin/pip install -q -r requirements/test.txt -e .
	@touch $@

up: images env ## start the databases and wait until healthy; prints time to healthy
	@$(COMPOSE) up -d --wait unified n8n-db letta-db
	@python3 scripts/time_to_healthy.py unified n8n-db letta-db

down: ## stop the stack (keeps the data volumes)
	@$(COMPOSE) --profile tools down --remove-orphans

clean: ## stop the stack and DELETE its volumes (all data of this stack)
	@$(COMPOSE) --profile tools down -v --remove-orphans

preflight: up ## check every database from the migrator container
	@$(COMPOSE) run --rm migrator preflight

rehearsal: preflight ## the local full-stack rehearsal on its built-in defaults

test: images env venv ## run the test suite (unit + integration against real containers)
	@$(PY) -m pytest -v $(PYTEST_ARGS)

test-unit: venv ## only the tests that need no docker
	@$(PY) -m pytest -v -m "not integration" $(PYTEST_ARGS)
