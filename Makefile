PY := .venv/bin/python
export SDNCEP_RUN_DIR ?= $(CURDIR)/run

.PHONY: install demo view test test-unit clean

install:
	@bash scripts/install.sh

demo: install
	$(PY) -m scripts.bench_live

view: install
	$(PY) -m scripts.demo

test: install
	$(PY) -m pytest -q tests

test-unit: install
	$(PY) -m pytest -q tests/unit tests/app

clean:
	$(PY) -m topologies.ovs stop || true
	rm -rf run results
