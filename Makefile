# spikeflow: every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
# Pin torch for every install (an unpinned torch pulls a multi-GB CUDA build).
export PIP_CONSTRAINT := $(abspath $(VENV))/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test precompile peer-venvs peer-venv-lava peer-venv-brian2 peer-venv-spyx test-unit test-slow test-interop bench accuracy lint install clean docs docs-serve docs-screenshots

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	echo "$(TORCH)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,video]"
	@# spoken-digits speaks its words with espeak-ng: installed when missing and we are root, never fatal
	command -v espeak-ng >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq espeak-ng; } \
		|| echo "spoken-digits needs espeak-ng: apt-get install espeak-ng"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikeflow demo

# The venvs install side by side while numba's kernel cache fills (two halves, one per core; without
# it every test process compiles the same kernels again), then the unit and interop suites run side
# by side (--output-sync keeps each suite's report in one piece).
test:
	$(MAKE) -j7 $(STAMP) $(ISTAMP) peer-venvs precompile
	$(MAKE) -j2 --output-sync=target test-unit test-interop

precompile: precompile-1 precompile-2
precompile-%: $(STAMP)
	$(VENV)/bin/spikeflow precompile --half $*

# The peer simulators' own venvs (Lava on Python 3.10, Brian2 on 3.13, spyx/JAX on >= 3.11;
# benchmarks/peer_venvs.py), made beside the others; where no such Python exists this says so and the
# interop tests that need it fail. The three install side by side (make -j).
PEER_VENVS := peer-venv-lava peer-venv-brian2 peer-venv-spyx
peer-venvs: $(PEER_VENVS)

$(PEER_VENVS): peer-venv-%: $(STAMP)
	-$(PY) benchmarks/peer_venvs.py $*

# Unit tests run on every core (pytest-xdist; each worker uses one torch thread, as tests/conftest.py sets).
test-unit: $(STAMP)
	$(PY) -m pytest -q -n auto --durations=15 -m "not slow and not interop"

# The slow tests, and every property test again with fresh random examples (the unit suite's are fixed).
test-slow: $(STAMP)
	$(PY) -m pytest -q -m "(slow or hypothesis) and not interop" --hypothesis-profile=random

# Peer libraries for interop tests live in their own venv (torch pinned the same way). triton is the
# version torch 2.13.0's CUDA build pins: on a machine without a GPU the tests of spikeflow's triton
# kernels run there under triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1).
IVENV  := .venv-interop
IPY    := $(IVENV)/bin/python
ISTAMP := $(IVENV)/.installed
INTEROP_PACKAGES := snntorch==1.0.0 norse==1.1.0 neurobench==2.3.0 triton==3.7.1

$(ISTAMP): pyproject.toml Makefile
	test -x $(IPY) || $(PYTHON) -m venv $(IVENV)
	echo "$(TORCH)" > $(IVENV)/constraints.txt
	PIP_CONSTRAINT=$(abspath $(IVENV))/constraints.txt $(IPY) -m pip install -q "$(TORCH)"
	PIP_CONSTRAINT=$(abspath $(IVENV))/constraints.txt $(IPY) -m pip install -q -e ".[dev]" $(INTEROP_PACKAGES)
	touch $@

test-interop: $(ISTAMP)
	$(IPY) -m pytest -q -m "interop and not slow"

# Peer libraries for the speed benchmark (benchmarks/peers.py), torch pinned the same way.
PVENV  := benchmarks/.venv-peers
PSTAMP := $(PVENV)/.installed
PEER_PACKAGES := snntorch==1.0.0 spikingjelly==2.0.0 norse==1.1.0

$(PSTAMP):
	test -x $(PVENV)/bin/python || $(PYTHON) -m venv $(PVENV)
	echo "$(TORCH)" > $(PVENV)/constraints.txt
	PIP_CONSTRAINT=$(abspath $(PVENV))/constraints.txt $(PVENV)/bin/pip install -q "$(TORCH)" $(PEER_PACKAGES)
	touch $@

# spyx (JAX) for the speed benchmark, in its own venv (benchmarks/peer_venvs.py pins it and writes the stamp).
SVENV  := benchmarks/.venv-spyx
SSTAMP := $(SVENV)/.installed

$(SSTAMP): $(STAMP)
	$(PY) benchmarks/peer_venvs.py spyx

# The peers' comparison runs 3 times (the ratios to the fastest peer per run: median and range).
BENCH_RUNS ?= 3

bench: $(STAMP) $(PSTAMP) $(SSTAMP)
	$(PY) benchmarks/crossover.py
	$(PY) benchmarks/peers.py --runs $(BENCH_RUNS)
	$(PY) benchmarks/pair_speed.py --json benchmarks/results/pair-speed.json
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/nir_accuracy.py
	$(PY) benchmarks/sim.py
	$(PY) benchmarks/runtime.py
	$(PY) benchmarks/clockfree_convergence.py
	$(PY) benchmarks/conv_crossover.py --frames 320
	$(PY) benchmarks/profile_w1.py
	$(PY) benchmarks/roofline_w3.py
	$(PY) benchmarks/lowp_matmul.py --json benchmarks/results/lowp-matmul.json
	$(PY) benchmarks/weight_layout.py --json benchmarks/results/weight-layout.json
	$(PY) benchmarks/scan_rows.py --json benchmarks/results/scan-rows.json
	$(PY) benchmarks/hw_nmnist.py --out runs/hw

# Every accuracy target of docs/training.md (hours on 2 cores); writes benchmarks/results/accuracy-<target>.json
# and fails when a figure is below its bar. One target: make accuracy TARGETS=spoken
TARGETS ?= digits fsdd spoken mnist5k convert nmnist5k
accuracy: $(STAMP)
	PYTHONPATH=src $(PY) benchmarks/accuracy.py $(TARGETS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs

# The documentation site: mkdocs-material + mkdocstrings, strict (a broken link, a missing page or an
# unresolved API name fails). The build runs every tutorial (docs/tools/hooks.py) and shows its real
# output and figures; SPIKEFLOW_FAST=1 builds with the tutorials' quick settings.
DSTAMP := $(VENV)/.docs-installed

$(DSTAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

docs: $(DSTAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(DSTAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# Screenshots of the built site in headless Chromium (Debian's package, driven by Playwright).
PLAYWRIGHT ?= playwright==1.65.2

docs-screenshots: docs
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	$(PY) -m pip install -q "$(PLAYWRIGHT)"
	$(PY) docs/tools/screenshots.py site docs/img

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info
