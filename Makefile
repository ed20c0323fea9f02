# foundry-operator developer entry points. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml operator/pyproject.toml client/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test lint typecheck unit demo run crds bench e2e image clean install control-plane

# Three distributions from this checkout: the operator (.), the emulator + demo (./operator), and
# the consumers' client library (./client); installed editable, in one resolver run.
$(STAMP): pyproject.toml operator/pyproject.toml client/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./operator -e ./client -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# kube-apiserver, etcd and kubectl (KUBEBUILDER_ASSETS when set, else built once from Go modules).
# Prints their directory.
control-plane:
	@bash controlplane/build.sh

lint: $(STAMP)
	$(BIN)/ruff check operator client tests $(wildcard bench)
	$(BIN)/ruff format --check operator client tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck control-plane
	$(BIN)/pytest -q -p no:cacheprovider

crds: $(STAMP)
	$(BIN)/foundry-operator crds --out crds --chart-out charts/foundry-operator/crds

demo: $(STAMP) control-plane
	$(BIN)/foundry-operator demo $(DEMO_ARGS)

run: $(STAMP)
	$(BIN)/foundry-operator run --all-namespaces

bench: $(STAMP) control-plane
	$(BIN)/python -m bench

e2e:
	@bash tests/e2e/run.sh

image:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make image: no Docker engine on this machine; skipped"; exit 0; }; \
	docker build -t foundry-operator:dev .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
