# Consolidation of a self-hosted stack's PostgreSQL databases into one Supabase
# Postgres. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# The legacy databases (profile "legacy") take part until `make decommission` retired them.
LEGACY := $(if $(wildcard env/.decommissioned),,--profile legacy)
LEGACY_DBS := $(if $(wildcard env/.decommissioned),,n8n-db letta-db)
COMPOSE := docker compose $(LEGACY)
VENV := .venv
PY := $(VENV)/bin/python
SEED_SCALE ?= 1

.PHONY: help deps images env venv up studio down clean preflight rehearsal test test-unit test-engine test-roles test-stack test-fast bench-data bench bench-clean up-apps seed fingerprint rehearsal-rollback consolidate rollback backups bench-backups decommission monitoring pooler bench-pooling bench-reader bench-online

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
	@$(COMPOSE) up -d --wait unified $(LEGACY_DBS)
	@python3 scripts/time_to_healthy.py unified $(LEGACY_DBS)

studio: up ## start postgres-meta, Supabase Studio's backend, on the unified instance (docs/studio.md)
	@$(COMPOSE) --profile studio up -d --wait meta && echo "[studio] postgres-meta on http://127.0.0.1:$${META_PORT:-58080}"

backups: up ## WAL archiving + scheduled pgBackRest backups of the unified instance (docs/backups.md)
	@bash scripts/backups_on.sh

monitoring: up ## postgres_exporter + Prometheus with alert rules (run `consolidate roles` first; docs/monitoring.md)
	@$(COMPOSE) --profile monitoring up -d --wait exporter prometheus \
	  && echo "[monitoring] Prometheus on http://127.0.0.1:$${PROMETHEUS_PORT:-59090}; \`consolidate status\` for a summary"


pooler: up ## PgBouncer + its metrics exporter on the unified instance (docs/pooling.md), after `consolidate roles`
	@$(COMPOSE) --profile pooler up -d --wait pgbouncer pgbouncer-exporter \
	  && echo "[pooler] pgbouncer on 127.0.0.1:$${POOLER_PORT:-56432}, metrics on 127.0.0.1:$${POOLER_EXPORTER_PORT:-59127}/metrics"


down: ## stop the stack (keeps the data volumes)
	@$(COMPOSE) --profile tools --profile apps --profile studio --profile backups --profile legacy --profile monitoring --profile grafana --profile pooler down --remove-orphans

clean: ## stop the stack and DELETE its volumes (all data of this stack); the env files the cutover rewrote get their originals back
	@$(COMPOSE) --profile tools --profile apps --profile studio --profile backups --profile legacy --profile monitoring --profile grafana --profile pooler down -v --remove-orphans
	@python3 scripts/forget_cutover.py env

preflight: up ## check every database from the migrator container
	@$(COMPOSE) run --rm db-tools preflight

up-apps: up ## also start n8n, Letta and the embeddings stub (profile apps) on the legacy databases
	@start=$$(date +%s); $(COMPOSE) --profile apps up -d --wait n8n letta embeddings \
	  && echo "[up-apps] n8n, letta, embeddings healthy $$(( $$(date +%s) - start )) s after \`up\`"

seed: up-apps ## create data in n8n and Letta through their APIs (SEED_SCALE=1 small; 100 large)
	@$(COMPOSE) run --rm -e SEED_SCALE=$(SEED_SCALE) db-tools seed

fingerprint: ## print what n8n and Letta list through their APIs (apps must be up)
	@$(COMPOSE) run --rm db-tools fingerprint

rehearsal: preflight seed ## the local full-stack rehearsal: legacy stack + apps, seed, consolidate, report, backups on
	@$(COMPOSE) run --rm db-tools fingerprint --save legacy
	@$(COMPOSE) run --rm migrator cutover
	@bash scripts/backups_on.sh

rehearsal-rollback: ## after `make rehearsal`: roll the cutover back, apps on the old databases again
	@$(COMPOSE) run --rm migrator rollback

consolidate: up-apps ## the maintenance window: back up, migrate, verify, switch n8n and Letta over
	@$(COMPOSE) run --rm migrator cutover

rollback: ## undo `make consolidate` (same as `docker compose run migrator rollback`)
	@$(COMPOSE) run --rm migrator rollback

decommission: ## after the cutover: archive the legacy databases (verified), remove their containers (docs/app-backups.md)
	@$(COMPOSE) run --rm migrator decommission

# The suite runs on TEST_WORKERS pytest-xdist workers (0: one process), a module or the shared
# real-app stack at a time per worker, the longest first (docs/tests.md: work units).
TEST_WORKERS ?= 2
WORKERS := -n $(TEST_WORKERS) --dist loadscope

test: images env venv ## run the test suite (unit + integration against real containers)
	@$(PY) -m pytest -v --durations=30 $(WORKERS) $(PYTEST_ARGS)

test-unit: venv ## only the tests that need no docker
	@$(PY) -m pytest -v -m "not integration" $(PYTEST_ARGS)

# Slow groups by marker (one per tests/ folder, set in tests/conftest.py; docs/tests.md).
test-engine: images env venv ## tests/engine: migrate, verify, resume, attacker against PostgreSQL containers
	@$(PY) -m pytest -v -m engine $(WORKERS) $(PYTEST_ARGS)

test-roles: images env venv ## tests/roles: roles, isolation, RAG model, hand-over
	@$(PY) -m pytest -v -m roles $(WORKERS) $(PYTEST_ARGS)

test-stack: images env venv ## tests/stack: compose stacks, real n8n/Letta, backups, monitoring, pooling (slowest)
	@$(PY) -m pytest -v -m stack $(WORKERS) $(PYTEST_ARGS)

test-fast: images env venv ## everything but tests/stack (-m "not stack")
	@$(PY) -m pytest -v -m "not stack" $(WORKERS) $(PYTEST_ARGS)

# --- benchmark (bench/, docs/benchmark.md) ----------------------------------
SIZE ?= 1GB
REPS ?= 3
BENCH_ARGS ?=

bench-data: images venv ## generate the benchmark's n8n-like + Letta-like sources, SIZE=1GB (kept in docker volumes)
	@$(PY) -m bench data --size $(SIZE)

bench: images venv ## migrate vs pgcopydb vs pg_dump/restore vs COPY floor + app queries (SIZE=1GB REPS=3)
	@$(PY) -m bench run --size $(SIZE) --reps $(REPS) $(BENCH_ARGS)

bench-backups: images venv ## pgBackRest full/diff/restore vs pg_basebackup/pg_dump, app latency during a backup (SIZE_MB=1000)
	@$(PY) -m bench.backups --size-mb $${SIZE_MB:-1000}

bench-reader: images venv ## app rows read as a throwaway non-superuser reader vs the old superuser row::text (SIZE_MB=1000)
	@$(PY) -m bench.reader --size-mb $${SIZE_MB:-1000} --reps $(REPS)

bench-online: images venv ## online vs offline downtime with a write load, and the replication lag (SIZE_MB=200 RATE=20)
	@$(PY) -m bench.online --size-mb $${SIZE_MB:-200} --rate $${RATE:-20}

bench-pooling: images venv ## direct vs PgBouncer: server connections, p50/p99 at 10/50/200 clients (docs/pooling.md)
	@$(PY) -m bench.pooling $(BENCH_ARGS)

bench-clean: ## remove the benchmark's containers and generated data volumes
	@$(PY) -m bench clean
