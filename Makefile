# Two commands set everything up on a fresh clone:
#   make run    create .venv, install, seed var/salvo.db, serve on http://127.0.0.1:$(PORT)
#   make test   install the dev tools, lint, run the whole suite
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# One Granian worker process by default: its in-memory rate-limit counter is then the
# only one, so "600 per minute" lets exactly 600 through. THREADS Python threads serve
# reads inside it (api/edge.py adds one for writes and two for exports); Granian's
# Rust runtime does all network I/O, so slow or idle clients hold no thread. More
# workers need SALVO_RATE_LIMIT_STORAGE=redis://...
WORKERS ?= 1
THREADS ?= 4
# Salvo instances behind HAProxy in `make cluster`.
INSTANCES ?= 2

.PHONY: run seed test lint openapi codebook bench soak soak-postgresql clean cluster

$(BIN)/python:
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

seed: $(VENV)/.runtime
	$(BIN)/python -m seed

run: seed
	@echo "Salvo on http://127.0.0.1:$(PORT)/ (docs: /api/v1/docs). Ctrl-C stops it."
	$(BIN)/python -m api serve --port $(PORT) --workers $(WORKERS) --threads $(THREADS)

# Many instances on one PostgreSQL database (ops/cluster.py): a throwaway PostgreSQL +
# PostGIS cluster (or $$SALVO_DATABASE=postgresql://...), migrated; redis-server for the
# shared rate-limit counters; INSTANCES Salvo instances; HAProxy balancing them on
# http://127.0.0.1:$(CLUSTER_PORT)/ with /readyz checks. Ctrl-C stops it all by PID.
# STANDBY=1 adds a hot standby of the throwaway cluster that the instances read from.
CLUSTER_PORT ?= 8080
STANDBY ?=
cluster: $(VENV)/.runtime
	@command -v haproxy >/dev/null || apt-get install -y -q haproxy || { echo "cluster needs haproxy (apt-get install haproxy)"; exit 2; }
	$(BIN)/python -m ops.cluster --instances $(INSTANCES) --port $(CLUSTER_PORT) $(if $(STANDBY),--standby)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy api schemas seed bench ops tests

test: lint
	$(BIN)/pytest

# Regenerate the published contract from the code (tests/test_openapi.py checks it).
# `contract` (api/openapi.py) keeps the spec's key order; flask-smorest's `openapi write` sorts.
# The examples first (api/examples.py): every operation's request sent to a fresh seed
# in a scratch file, written with its answer to api/examples.json, which the contract shows.
openapi: $(VENV)/.runtime
	rm -f var/examples.db* && $(BIN)/python -m seed --db var/examples.db
	$(BIN)/flask --app api examples var/examples.db api/examples.json
	rm -f var/examples.db*
	$(BIN)/flask --app api contract openapi.yaml

# Regenerate the codebook (docs/codebook.md) from the schemas and vocabularies
# (tests/test_docs_pages.py checks it).
codebook: $(VENV)/.runtime
	$(BIN)/python -m schemas.codebook docs/codebook.md

clean:
	rm -rf $(VENV) .venv-bench var .pytest_cache .ruff_cache .hypothesis

# The benchmark of issue 4: builds var/bench.db (1,000,000 synthetic events) once,
# then loads Salvo, the floor app and Datasette in turn with wrk (bench/run.py).
# Then issue 22's: the same events on a throwaway PostgreSQL, Salvo against its floor
# there, against Salvo on SQLite, one instance against two behind HAProxy, and the
# /stats shapes against PostgreSQL's scan (bench/postgresql.py; skipped, saying so,
# where PostgreSQL 15 + PostGIS, HAProxy or redis-server is missing).
# Then issue 21's: the predecessor release (3cbda1a) against this checkout in-process, every
# page case, /stats shape and a one-event POST, in alternating rounds (bench/before_after.py).
# Then issue 13's: `python -m seed import` of a 1,000,000-row ACLED file (bench/imports.py).
bench: $(VENV)/.dev .venv-bench/bin/datasette
	@command -v wrk >/dev/null || apt-get install -y -q wrk || { echo "bench needs wrk (apt-get install wrk)"; exit 2; }
	$(BIN)/python bench/run.py
	$(BIN)/python bench/postgresql.py
	$(BIN)/python bench/before_after.py
	$(BIN)/python bench/imports.py

# 60 s of mixed reads, writes, PATCH races and exports on var/soak.db (100,000 events,
# built once), then a check that every acknowledged write is in the file and /changes.
soak: $(VENV)/.dev
	$(BIN)/python bench/soak.py

# The same on a throwaway PostgreSQL (100,000 events, loaded each run) with two instances
# behind HAProxy, one killed half-way; also checks the change feed against a mirror and
# the rollups against the same rollups refilled from every event.
soak-postgresql: $(VENV)/.dev
	$(BIN)/python bench/soak.py --postgresql

.venv-bench/bin/datasette:
	python3 -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q 'datasette==0.65.5'
