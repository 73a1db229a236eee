PY := .venv/bin/python
SDNCEP := .venv/bin/sdncep
export SDNCEP_RUN_DIR ?= $(CURDIR)/run

.PHONY: install demo view test test-unit clean

install:
	@bash scripts/install.sh

demo: install
	$(SDNCEP) demo

view: install
	$(SDNCEP) view

test: install
	$(PY) -m pytest -q tests

test-unit: install
	$(PY) -m pytest -q tests/unit tests/app

clean:
	$(PY) -m topologies.ovs stop || true
	rm -rf run results
