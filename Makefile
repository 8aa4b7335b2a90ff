# lc-plugin: every target installs what it needs first (idempotent), then does its job.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DL_STAMP := $(VENV)/.installed-dl
APT_PACKAGES := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-rasterio \
	python3-venv python3-pip python3-matplotlib python3-requests python3-scipy zip \
	xvfb xauth chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION := $(shell sed -n 's/^version=//p' metadata.txt)

.PHONY: setup setup-dl system test lint demo package model help qgis-process bench clean

setup: $(STAMP)

system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(MAKE) --no-print-directory system
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

# Optional deep-learning stack: torch==2.13.0 resolves to the +cpu wheel here (192 MB wheel, 750 MB installed, ~17 s).
# Where pip only sees PyPI (whose Linux torch pulls GBs of CUDA packages), pass TORCH_INDEX=https://download.pytorch.org/whl/cpu.
TORCH_INDEX ?=
setup-dl: $(DL_STAMP)

$(DL_STAMP): $(STAMP) requirements-dl.txt constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -r requirements-dl.txt
	@touch $(DL_STAMP)

test: setup setup-dl
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

demo: setup
	QT_QPA_PLATFORM=offscreen $(PY) demo/run_demo.py

package: setup
	@QT_QPA_PLATFORM=offscreen $(PY) scripts/build_help.py 2>/dev/null
	@rm -rf build/package && mkdir -p build/package/landcover dist
	@cp -r __init__.py plugin.py provider.py deps_installer.py deps_gui.py metadata.txt LICENSE README.md algorithms gui lc_plugin resources build/package/landcover/
	@find build/package -name __pycache__ -prune -exec rm -rf {} +
	@cd build/package && rm -f ../../dist/landcover-$(VERSION).zip && zip -qr ../../dist/landcover-$(VERSION).zip landcover
	@echo dist/landcover-$(VERSION).zip

# Regenerate the shipped graphical-modeler model from the algorithms' parameter ids
model: setup
	QT_QPA_PLATFORM=offscreen $(PY) scripts/build_model.py

# Regenerate the help shipped in the plugin (resources/help/index.html) from the algorithms' help texts
help: setup
	QT_QPA_PLATFORM=offscreen $(PY) scripts/build_help.py

# Headless qgis_process with this checkout's plugin enabled, e.g. make qgis-process ARGS=list
qgis-process: setup
	@scripts/qgis-process $(ARGS)

# make bench [BENCH_ARGS=--quick]: bench/run.py makes bench/.venv-eolearn and bench/work/ itself
bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build dist .pytest_cache
