# gdbext: `make demo` shows the extension on real crashes, `make test` runs the suite.
# Both run `make setup` first: a venv for gdb's own Python, the project and its
# test extras, and the fixtures.  Everything is idempotent.

SHELL := /bin/bash
GDB ?= gdb
ifeq ($(origin CC),default)
CC := gcc
endif
VENV ?= .venv
BUILD ?= build
FIXTURES := $(BUILD)/fixtures
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: setup packages rustc venv fixtures demo test unit e2e fuzz bench clean test-real real-fixtures

setup: packages venv fixtures

# System tools the project cannot work without; installed only when missing.
# libomp5-14 is the LLVM OpenMP runtime for the loader-lock fixture's second runtime;
# graphviz's dot draws deadlock-graph's --dot picture in `make demo`;
# python3-numpy on libopenblas0-pthread: the real numpy/OpenBLAS SIGILL of py-stacks' tests
# (its family-15h kernels; numpy's wheel leaves them out), and the dispatch tests' real OpenBLAS.
LLVM_OMP_LIB ?= /usr/lib/llvm-14/lib/libomp.so.5
packages:
	@scripts/ensure-packages gdb:gdb gcc:gcc g++:g++ as:binutils objdump:binutils \
	  /usr/bin/python3.11:python3.11 \
	  $(LLVM_OMP_LIB):libomp5-14 dot:graphviz \
	  gdb-multiarch:gdb-multiarch aarch64-linux-gnu-as:binutils-aarch64-linux-gnu \
	  /usr/lib/python3/dist-packages/numpy/__init__.py:python3-numpy \
	  /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0:libopenblas0-pthread

# rustc: the one on PATH, else rustup's, else Debian's (installed when none is found).
RUSTC ?= $(shell command -v rustc 2>/dev/null || ls $(HOME)/.cargo/bin/rustc 2>/dev/null)
ifeq ($(strip $(RUSTC)),)
RUSTC := /usr/bin/rustc
endif
rustc:
	@[ -x "$(RUSTC)" ] || scripts/ensure-packages /usr/bin/rustc:rustc

# gdb embeds its own Python; the venv must be built for that version.
# gdb's Python never writes bytecode (sys.dont_write_bytecode): compile the
# package once with the venv's interpreter (gdb's version), or every gdb
# compiles every module it imports from source.
venv: packages
	@scripts/make-venv "$(GDB)" "$(VENV)"
	@$(VENV)/bin/python -m compileall -q gdbext

fixtures: packages rustc
	@$(MAKE) --no-print-directory -C fixtures OUT="$(abspath $(FIXTURES))" CC="$(CC)" RUSTC="$(RUSTC)" \
	  LLVM_OMP_LIB="$(LLVM_OMP_LIB)"

demo: setup
	@scripts/demo "$(GDB)" "$(FIXTURES)" "$(abspath $(VENV))"

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests --ignore=tests/real

# Real runtimes too large or slow for `make test`: the mkl + intel-openmp
# wheels (~270 MB download, 450 MB kept in build/mkl) and Debian's numpy with
# threaded OpenBLAS (installed when missing).  tests/real.
REAL_PACKAGES := /usr/lib/python3/dist-packages/numpy/__init__.py:python3-numpy \
  /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0:libopenblas0-pthread
real-fixtures: setup
	@scripts/ensure-packages $(REAL_PACKAGES)
	@scripts/fetch-mkl "$(VENV)" "$(BUILD)/mkl"
	@$(MAKE) --no-print-directory -C fixtures OUT="$(abspath $(FIXTURES))" CC="$(CC)" \
	  MKL_LIB="$(abspath $(BUILD)/mkl/lib)" deadlock-mkl-fixtures

test-real: real-fixtures
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/real

unit: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/unit

e2e: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/e2e

# The pure parsers (core notes, ELF headers, CFI, glibc structures, decoding)
# under hypothesis: FUZZ_EXAMPLES per test, weighted by cost, new random cases
# each run; prints "fuzz: N cases, M failures".  `make test` runs a short,
# derandomized pass of the same tests.
FUZZ_EXAMPLES ?= 5500
fuzz: setup
	GDBEXT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) GDBEXT_FUZZ_RANDOM=1 \
	  $(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/fuzz

bench: setup
	$(VENV)/bin/python bench/load_cost.py
	$(VENV)/bin/python bench/isa_check_speed.py
	$(VENV)/bin/python bench/isa_scan_speed.py
	$(VENV)/bin/python bench/deadlock_graph_speed.py
	$(VENV)/bin/python bench/scale_threads.py
	$(VENV)/bin/python bench/python_threads_deadlock.py
	$(VENV)/bin/python bench/spill_audit_speed.py
	$(VENV)/bin/python bench/triage_throughput.py
	$(VENV)/bin/python bench/py_stacks_speed.py
	$(VENV)/bin/python bench/everyday_triage.py
	$(VENV)/bin/python bench/triage_python.py
	$(VENV)/bin/python bench/python_lines.py

clean:
	rm -rf $(BUILD) $(VENV)
