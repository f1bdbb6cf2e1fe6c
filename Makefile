# The two commands of README.md: `make demo` (set up + main job) and `make test` (set up + test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision versions that this project's machines hold on disk (a CUDA build that also runs on the CPU)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=23"
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[notebooks,test]"
	touch $@

demo: setup
	$(PY) scripts/main_job.py

test: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) reports test-artifacts .pytest_cache
