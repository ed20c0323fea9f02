# foundry-operator developer entry points. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test lint typecheck unit demo run crds bench e2e image clean install

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check operator tests $(wildcard bench)
	$(BIN)/ruff format --check operator tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

crds: $(STAMP)
	$(BIN)/foundry-operator crds --out crds --chart-out charts/foundry-operator/crds

demo: $(STAMP)
	$(BIN)/foundry-operator demo

run: $(STAMP)
	$(BIN)/foundry-operator run --all-namespaces

bench: $(STAMP)
	$(BIN)/python -m bench

e2e:
	@bash tests/e2e/run.sh

image:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make image: no Docker engine on this machine; skipped"; exit 0; }; \
	docker build -t foundry-operator:dev .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
