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

.PHONY: setup packages rustc venv fixtures demo test unit e2e fuzz hostile-cores bench clean test-real real-fixtures \
  test-trixie vacuity-check

setup: packages venv fixtures

# System packages the project cannot work without, by the names the running
# Debian release gives them (12 and 13 differ); installed only when missing.
# scripts/setup-packages says what each is for.
packages:
	@scripts/setup-packages "$(GDB)"

# LLVM's OpenMP runtime (the loader-lock fixture's second runtime): the newest
# LLVM's that `packages` found or installed.  Expanded when used, after it ran.
LLVM_OMP_LIB ?= $(or $(shell ls -v /usr/lib/llvm-*/lib/libomp.so.5 2>/dev/null | tail -n 1),/usr/lib/llvm-N/lib/libomp.so.5)

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
	@scripts/strip-pythons "$(abspath $(FIXTURES))/pystripped"
	@scripts/fetch-coredumpctl "$(abspath $(BUILD))/coredumpctl"

demo: setup
	@scripts/demo "$(GDB)" "$(FIXTURES)" "$(abspath $(VENV))"

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests --ignore=tests/real

# The negative tests (pytest -m negative: refusals, errors, read-only and
# security claims) once with gdb never sourcing gdbext and once with its
# packages missing: every one must fail; any that passes is listed and fails
# the check (scripts/vacuity-check; a few minutes).
vacuity-check: setup
	$(VENV)/bin/python scripts/vacuity-check $(VENV)/bin/python $(PYTEST_ARGS)

# Real runtimes too large or slow for `make test`: the mkl + intel-openmp
# wheels (~270 MB download, 450 MB kept in build/mkl) and Debian's numpy with
# threaded OpenBLAS (`packages` installs it).  tests/real.
real-fixtures: setup
	@scripts/fetch-mkl "$(VENV)" "$(BUILD)/mkl"
	@$(MAKE) --no-print-directory -C fixtures OUT="$(abspath $(FIXTURES))" CC="$(CC)" \
	  MKL_LIB="$(abspath $(BUILD)/mkl/lib)" deadlock-mkl-fixtures

test-real: real-fixtures
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/real

# The same `make demo` and `make test` on a clean clone inside a Debian 13
# chroot (gdb 16, Python 3.13, glibc 2.41, GCC 14) under build/trixie, built
# on first use (~2 minutes) and reused.  Needs root.  scripts/test-trixie.
test-trixie:
	scripts/test-trixie demo test

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

# The hostile-core corpus (issue 28): ~600 seeded mutants of real cores (truncated,
# flipped, absurd values, zeroed memory, relabelled, wrong executables, not cores)
# through crash-triage in gdb and `gdbext triage`; writes docs/hostile-cores.md.
HOSTILE_SEED ?= 28
hostile-cores: setup
	$(VENV)/bin/python bench/hostile_cores.py --seed $(HOSTILE_SEED)

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
	$(VENV)/bin/python bench/cli_speed.py
	$(VENV)/bin/python bench/everyday_triage.py
	$(VENV)/bin/python bench/triage_python.py
	$(VENV)/bin/python bench/python_lines.py
	$(VENV)/bin/python bench/remote_speed.py

clean:
	rm -rf $(BUILD) $(VENV)
