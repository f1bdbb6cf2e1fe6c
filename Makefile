# The two commands of README.md: `make demo` (set up + main job) and `make test` (set up + test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision versions that this project's machines hold on disk (a CUDA build that also runs on the CPU)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test clean browser-deps

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=23"
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[notebooks,test]"
	touch $@

demo: setup
	$(PY) scripts/main_job.py

# tests/test_browser.py drives Debian's chromium with Playwright (the Python package comes with the `test`
# extra; no browser is ever downloaded). As root with apt-get (as in CI), install what is missing; elsewhere
# say how (the test then skips, except in CI where it must run). The CJK font lets charts draw Chinese labels.
BROWSER_PACKAGES := chromium chromium-driver fonts-liberation fonts-wqy-microhei

browser-deps:
	@if dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(BROWSER_PACKAGES) for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(BROWSER_PACKAGES) >/dev/null) || echo "warning: apt-get could not install $(BROWSER_PACKAGES)"; \
	else echo "note: the browser test needs $(BROWSER_PACKAGES): sudo apt-get install $(BROWSER_PACKAGES)"; fi

test: setup browser-deps
	$(PY) -m pytest

clean:
	rm -rf $(VENV) reports test-artifacts .pytest_cache
