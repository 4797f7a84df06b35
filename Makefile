# The two commands of the quick start, plus the benchmarks.
# Each target creates .venv if it is missing and installs the project with all extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-peers lint clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# bench: matplotlib, for the benchmarks' picture (and its tests); never imported by fluvial
$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet -e '.[all,test,bench]'
	touch $(STAMP)

demo: $(STAMP)
	RAY_AUTH_MODE=disabled $(BIN)/python examples/customers.py threads dask ray
	$(BIN)/fluvial runs ls --limit 3
	$(BIN)/fluvial runs inspect latest
	$(BIN)/fluvial deploy examples/customers.py:main --name every-3s --interval 3
	$(BIN)/fluvial worker start --max-runs 2
	$(BIN)/fluvial deployment inspect main/every-3s
	@echo "Watch it live: $(BIN)/fluvial server start, then open http://127.0.0.1:4200"

# What the tests need from Debian, installed here when missing: chromium and
# chromium-driver (the browser tests), graphviz's dot (flow visualisation).
system-deps:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver -a -x /usr/bin/dot || { \
	  echo "installing chromium, chromium-driver and graphviz (for the tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver graphviz; }

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The same flows on Prefect 3.8.8, side by side (not part of `make test` or `make bench`).
# Prefect gets a virtualenv of its own; its server runs on 127.0.0.1 with a throwaway home.
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.installed

$(PEERS_STAMP):
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet 'prefect==3.8.8' prefect-dask prefect-ray \
	  'fastapi>=0.139,<0.145'
	touch $(PEERS_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP)
	RAY_AUTH_MODE=disabled $(BIN)/python -m benchmarks.peers

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache .ruff_cache .mypy_cache
