# focusnet: two commands on a fresh machine.
#   make demo   build the main environment if needed, then run the demo
#   make test   build the environments if needed, then lint and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VENV_LATEST := .venv-latest
VENV_LINT := .venv-lint
MAIN_READY := $(VENV)/.complete
LATEST_READY := $(VENV_LATEST)/.complete
# Fiji's TensorFlow runtimes, as Python wheels: exported bundles are loaded there in the tests.
TF1_READY := .venv-tf1.15/.complete .venv-tf1.12/.complete
# focusnet[onnx] without TensorFlow: the tests measure there and compare with TensorFlow.
ONNX_READY := .venv-onnx/.focusnet-installed
# The packaged CellProfiler 4.2 apps' Python 3.8 with CellProfiler and without focusnet or TensorFlow:
# the tests install focusnet's wheel the way app users do and run the pipelines there.
APP_READY := .venv-app/.complete
# CellProfiler 5 (nightly, pinned): the module's and the pipelines' tests run there too.
CP5_READY := .venv-cp5/.focusnet-installed
# napari with PyQt5 and pytest-qt, without TensorFlow: the widget's tests run there under Xvfb.
NAPARI_READY := .venv-napari/.focusnet-installed
# Xvfb and ImageJ (Debian packages, installed as root; otherwise the napari and ImageJ tests skip with the reason).
TEST_PACKAGES_READY := .cache/test-packages-ready
DEMO_IMAGE := examples/images/BBBC006_z_aligned__a07__s1__w1_10.tif
DEMO_OUT := demo-output
# Keep tool caches (matplotlib fonts) inside the clone.
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib

.PHONY: help env envs app-env tf1-envs demo test test-fast test-integration test-cellprofiler test-packaging \
	test-main test-main-library test-main-apps test-latest test-cp5 test-napari lint bench clean

help:
	@echo "make demo    simulate defocus of a real image and measure it with the shipped model (builds .venv on first use)"
	@echo "make test    lint and every suite (main, latest, cp5), builds the environments on first use; reports every failure"
	@echo "make test-fast  the unit tier (tests/unit): the library's logic, no subprocess, JVM or training: seconds"
	@echo "make test-main  all four tiers (unit, integration, cellprofiler, packaging) in the main environment"
	@echo "make test-integration / test-cellprofiler / test-packaging   one tier in the main environment"
	@echo "make test-latest  the unit tier and the TensorFlow tests on the newest Python and TensorFlow"
	@echo "make test-cp5   the cellprofiler tier on CellProfiler 5"
	@echo "make test-napari  the napari widget in a real viewer under Xvfb (.venv-napari)"
	@echo "make lint    ruff on the whole repository"
	@echo "make env     only build the main environment (.venv: Python 3.9, TF 2.15.1, CellProfiler 4.2.8.1)"
	@echo "make bench   accuracy and speed benchmarks against CellProfiler's focus metrics (prints tables)"
	@echo "make clean   remove the environments and outputs"

# An environment is rebuilt only when what defines it changes.
$(MAIN_READY): requirements/main.in requirements/main.lock scripts/make-env.sh
	scripts/make-env.sh main $(VENV)

$(LATEST_READY): requirements/latest.in requirements/latest.lock scripts/make-env.sh
	scripts/make-env.sh latest $(VENV_LATEST)

$(VENV_LINT)/.complete: requirements/lint.in requirements/lint.lock scripts/make-env.sh
	scripts/make-env.sh lint $(VENV_LINT)

.venv-tf1.%/.complete: requirements/tf1.%.in requirements/tf1.%.lock scripts/make-env.sh
	scripts/make-env.sh tf1.$* .venv-tf1.$*

$(APP_READY): requirements/app.in requirements/app.lock scripts/make-env.sh
	scripts/make-env.sh app .venv-app

.venv-cp5/.complete: requirements/cp5.in requirements/cp5.lock scripts/make-env.sh
	scripts/make-env.sh cp5 .venv-cp5

.venv-onnx/.complete: requirements/onnx.in requirements/onnx.lock scripts/make-env.sh
	scripts/make-env.sh onnx .venv-onnx

.venv-napari/.complete: requirements/napari.in requirements/napari.lock scripts/make-env.sh
	scripts/make-env.sh napari .venv-napari

# Not a real file's rule: it tries again on every run until xvfb-run and ImageJ are there.
$(TEST_PACKAGES_READY):
	@mkdir -p $(@D)
	scripts/install-test-packages.sh $@

# focusnet's packaging (setup.cfg) changes reinstall it, without rebuilding the environment.
%/.focusnet-installed: %/.complete setup.cfg pyproject.toml
	$*/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

env: $(VENV)/.focusnet-installed

tf1-envs: $(TF1_READY)

app-env: $(APP_READY)

demo: $(VENV)/.focusnet-installed
	$(VENV)/bin/focusnet simulate $(DEMO_IMAGE) --out $(DEMO_OUT)/simulate --levels 0,2,4,6,8,10 --seed 0
	@echo
	$(VENV)/bin/focusnet predict $(DEMO_IMAGE) $(DEMO_OUT)/simulate/*.tif --csv $(DEMO_OUT)/focus.csv \
		--patches-csv $(DEMO_OUT)/patches.csv --overlay-dir $(DEMO_OUT)/overlays
	@echo
	$(VENV)/bin/cellprofiler -c -r -p pipelines/measure_focus.cppipe -i examples/images \
		-o $(DEMO_OUT)/cellprofiler --plugins-directory plugins > $(DEMO_OUT)/cellprofiler.log 2>&1
	@$(VENV)/bin/python -c "import csv; rows = list(csv.DictReader(open('$(DEMO_OUT)/cellprofiler/Image.csv'))); \
		[print('CellProfiler MeasureImageFocus:', r['FileName_DNA'], 'defocus level', r['ImageFocus_DefocusLevel_DNA'], \
		'aggregate certainty', r['ImageFocus_AggregateCertainty_DNA'][:5]) for r in rows]"
	@echo
	@echo "Defocus series montage: $(DEMO_OUT)/simulate/$(basename $(notdir $(DEMO_IMAGE)))_montage.png"
	@echo "focusnet predict:       $(DEMO_OUT)/focus.csv (per patch: $(DEMO_OUT)/patches.csv), overlays in $(DEMO_OUT)/overlays/"
	@echo "CellProfiler (headless, pipelines/measure_focus.cppipe on examples/images):"
	@echo "                        $(DEMO_OUT)/cellprofiler/Image.csv, overlays $(DEMO_OUT)/cellprofiler/*_focus.png"

# Every environment make test uses.
ENVS := $(VENV_LINT)/.complete $(VENV)/.focusnet-installed $(TF1_READY) $(ONNX_READY) $(APP_READY) \
	$(VENV_LATEST)/.focusnet-installed $(CP5_READY) $(NAPARI_READY) $(TEST_PACKAGES_READY)

envs: $(ENVS)

# make test: the environments first, two at a time (pip mostly waits on the disk); then the suites
# in two lanes side by side (scripts/run-suites.sh: each suite keeps about one core busy). Every suite
# runs whatever failed before it; the summary names the failed ones and the status is non-zero if
# any failed (.ci/run relies on it). A suite whose environment did not build fails with make's
# message. The main environment's suite runs as two pytest processes, one per lane (measured: about
# 11 and 5 minutes), and the lanes are balanced by the other suites. The CellProfiler suites each
# measure a 20000 x 20000 image (about 10 GB); that test takes a lock, so two never run at once.
LANE_1 := lint test-main-library test-napari
LANE_2 := test-main-apps test-latest test-cp5
test:
	@start=$$(date +%s); $(MAKE) --no-print-directory -j2 -k envs; \
		echo "=== environments: $$(( $$(date +%s) - start )) s"
	@scripts/run-suites.sh "$(LANE_1)" "$(LANE_2)"

lint: $(VENV_LINT)/.complete
	$(VENV_LINT)/bin/ruff check .

PYTEST_REPORT := -rfEs --durations=25

# The unit tier (tests/unit): the library's logic in this process, no subprocess, JVM, training, TF1 or
# Dask: well under 30 s.
test-fast: $(VENV)/.focusnet-installed
	$(VENV)/bin/python -m pytest -q tests/unit

# One tier in the main environment, for contributors (test-main runs all four).
test-integration: $(VENV)/.focusnet-installed $(TF1_READY) $(ONNX_READY) $(TEST_PACKAGES_READY)
	$(VENV)/bin/python -m pytest $(PYTEST_REPORT) tests/integration

test-cellprofiler: $(VENV)/.focusnet-installed
	$(VENV)/bin/python -m pytest $(PYTEST_REPORT) tests/cellprofiler

test-packaging: $(VENV)/.focusnet-installed $(APP_READY)
	$(VENV)/bin/python -m pytest $(PYTEST_REPORT) tests/packaging

# All four tiers on Python 3.9 + TensorFlow 2.15.1 + CellProfiler 4.2.8.1, with Fiji's TF1 runtimes.
test-main: $(VENV)/.focusnet-installed $(TF1_READY) $(ONNX_READY) $(APP_READY) $(TEST_PACKAGES_READY)
	$(VENV)/bin/python -m pytest $(PYTEST_REPORT)

# test-main in two halves, for make test's two lanes.
test-main-library: $(VENV)/.focusnet-installed $(TF1_READY) $(ONNX_READY) $(TEST_PACKAGES_READY)
	$(VENV)/bin/python -m pytest $(PYTEST_REPORT) tests/unit tests/integration

test-main-apps: $(VENV)/.focusnet-installed $(APP_READY)
	$(VENV)/bin/python -m pytest $(PYTEST_REPORT) tests/cellprofiler tests/packaging

# What differs on a current Python with the newest TensorFlow (no CellProfiler there): the unit tier and
# the tests marked tensorflow (the model, training, SavedModel/ONNX export, bioimage.io, the TF1 runtimes
# loading its bundles), not the command-line, batch and Dask runs again.
test-latest: $(VENV_LATEST)/.focusnet-installed $(TF1_READY) $(ONNX_READY)
	$(VENV_LATEST)/bin/python -m pytest $(PYTEST_REPORT) tests/unit tests/integration \
		-m "(unit or tensorflow) and not cellprofiler and not packaging and not fuzz"

# The napari tier: the widget in a real viewer, under Xvfb when it is installed (the tests skip without a display).
test-napari: $(NAPARI_READY) $(TEST_PACKAGES_READY)
	@if command -v xvfb-run >/dev/null; then \
		xvfb-run -a -s "-screen 0 1600x1000x24" .venv-napari/bin/python -m pytest $(PYTEST_REPORT) tests/napari; \
	else .venv-napari/bin/python -m pytest $(PYTEST_REPORT) tests/napari; fi

# The CellProfiler tier on CellProfiler 5 (Python 3.11), headless and offline.
test-cp5: $(CP5_READY)
	.venv-cp5/bin/python -m pytest $(PYTEST_REPORT) tests/cellprofiler

# Accuracy and speed against CellProfiler's classic focus metrics (minutes); figures go to
# benchmarks/results/ (docs/benchmarks.md explains them).
bench: $(VENV)/.focusnet-installed
	$(VENV)/bin/python benchmarks/simulator.py
	$(VENV)/bin/python benchmarks/accuracy.py --out benchmarks/results
	$(VENV)/bin/python benchmarks/speed.py --json benchmarks/results/speed.json --markdown benchmarks/results/speed.md
	$(VENV)/bin/python benchmarks/stacks.py --json benchmarks/results/stacks.json | tee benchmarks/results/stacks.md
	$(VENV)/bin/python benchmarks/memory.py --json benchmarks/results/memory.json | tee benchmarks/results/memory.md
	$(VENV)/bin/python benchmarks/cluster.py --json benchmarks/results/cluster.json | tee benchmarks/results/cluster.md
	$(VENV)/bin/python benchmarks/onnxruntime_vs_tensorflow.py --json benchmarks/results/onnx.json | tee benchmarks/results/onnx.md
	$(VENV)/bin/python benchmarks/profile.py --json benchmarks/results/profile.json | tee benchmarks/results/profile.md
	$(VENV)/bin/python benchmarks/refocus.py --json benchmarks/results/refocus.json | tee benchmarks/results/refocus.md
	$(MAKE) --no-print-directory $(NAPARI_READY) $(TEST_PACKAGES_READY)
	$(VENV)/bin/python benchmarks/imagej_engine.py --json benchmarks/results/imagej.json | tee benchmarks/results/imagej.md
	xvfb-run -a -s "-screen 0 1600x1000x24" .venv-napari/bin/python benchmarks/napari_widget.py \
		--json benchmarks/results/napari.json | tee benchmarks/results/napari.md
	$(VENV)/bin/python scripts/render_docs.py

clean:
	rm -rf $(VENV) $(VENV_LATEST) $(VENV_LINT) .venv-tf1.15 .venv-tf1.12 .venv-onnx .venv-app .venv-cp5 .venv-napari \
		$(DEMO_OUT) .cache build *.egg-info
