# The two commands of README.md: `make demo` (set up + main job) and `make test` (set up + test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision versions that this project's machines hold on disk (a CUDA build that also runs on the CPU)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test test-fast clean browser-deps fonts

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=23"
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[notebooks,test]"
	touch $@

demo: setup fonts
	$(PY) scripts/main_job.py

# A CJK font, so that charts with Chinese titles, labels or class names (lang="zh", --lang zh, LANG = "zh")
# draw glyphs instead of empty boxes. Nothing to do when one is installed already; as root with apt-get,
# install one; elsewhere say how (clipnb then warns once when a chart needs it, and draws boxes).
CJK_FONT_PACKAGES := fonts-wqy-microhei

fonts:
	@if fc-list :lang=zh 2>/dev/null | grep -q . || dpkg -s $(CJK_FONT_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(CJK_FONT_PACKAGES) for Chinese chart labels"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(CJK_FONT_PACKAGES) >/dev/null) || echo "warning: apt-get could not install $(CJK_FONT_PACKAGES)"; \
	else echo "note: Chinese chart labels need a CJK font: sudo apt-get install $(CJK_FONT_PACKAGES)" \
	  "(or fonts-noto-cjk; conda: conda install -c conda-forge font-ttf-noto-cjk)"; fi

# tests/test_browser.py drives Debian's chromium with Playwright (the Python package comes with the `test`
# extra; no browser is ever downloaded). As root with apt-get (as in CI), install what is missing; elsewhere
# say how (the test then skips, except in CI where it must run). The CJK font comes from `fonts`.
BROWSER_PACKAGES := chromium chromium-driver fonts-liberation

browser-deps:
	@if dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(BROWSER_PACKAGES) for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(BROWSER_PACKAGES) >/dev/null) || echo "warning: apt-get could not install $(BROWSER_PACKAGES)"; \
	else echo "note: the browser test needs $(BROWSER_PACKAGES): sudo apt-get install $(BROWSER_PACKAGES)"; fi

test: setup fonts browser-deps
	$(PY) -m pytest

# The inner loop: everything but the tests marked (pyproject's markers) as executing notebooks, driving Chromium,
# starting Dask clusters or taking over ~10 s; `make test` still runs them all
FAST := not notebook and not browser and not cluster and not slow

test-fast: setup fonts
	$(PY) -m pytest -m "$(FAST)"

clean:
	rm -rf $(VENV) reports test-artifacts .pytest_cache
