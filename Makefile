# Two commands on a fresh machine (Python 3.11 or 3.12, and make):
#   make demo   installs everything into .venv, starts the embedded lab and runs the scripted demo
#   make test   installs the dev extras and runs the whole test suite
# Another interpreter: `make test PYTHON=/path/to/python3.12`. Python 3.13 is not supported yet: pgserver (the
# embedded PostgreSQL) publishes no wheel for it.
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12))' 2>/dev/null && command -v $$p && break; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint check eval eval-smoke lab-up lab-down clean

# llama-cpp-python (the embedded GPU node's model runtime) builds from source: no curl, no tools, two jobs,
# for this CPU (-march=native: prompt evaluation ~1.5x a portable AVX2 build's) but without AMX: on a virtual
# machine whose CPU lists AMX without enabling it, AMX tile code died with SIGILL. pip caches the wheel by its
# source alone, so `python -m simlab.ollama.cpu` checks the installed build against this CPU's flags and a
# wheel built for another machine is built again. Other architectures get the defaults.
LLAMA_CMAKE := -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE += -DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
endif

$(STAMP): pyproject.toml Makefile
	@test -n "$(PYTHON)" || { echo "LabOps needs Python 3.11 or 3.12 (none found on PATH): set PYTHON=/path/to/python3.12"; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), f"LabOps needs Python 3.11 or 3.12, found {sys.version.split()[0]} (3.13 waits for a pgserver wheel): set PYTHON=/path/to/python3.12"'
	@test ! -x $(BIN)/python || $(BIN)/python -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12))' || { echo "$(VENV) holds an unsupported Python: remove it (make clean) and run make again"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	@echo "installing LabOps (the first run builds llama-cpp-python from source: about 10 minutes)"
	CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet -e '.[dev,lab]'
	@$(BIN)/python -m simlab.ollama.cpu || { echo "building llama-cpp-python again for this CPU (about 10 minutes)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet --no-cache-dir --force-reinstall --no-deps \
	  "llama-cpp-python==$$($(BIN)/python -c 'import llama_cpp; print(llama_cpp.__version__)')" && $(BIN)/python -m simlab.ollama.cpu; }
	$(BIN)/python -m knowledge.build_assets
	$(BIN)/python -m simlab.ollama.assets 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(BIN)/python -m simlab.ollama.assets --check
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/labops demo

# The suite's files are spread over worker processes (pytest-xdist; a file's tests stay in one worker, so its
# module fixtures start once): 13 min 48 s to 14 min 50 s on two cores, 19 min 24 s in one process (2026-12-06);
# 15 min 6 s for 873 tests (2026-12-07); 13 min 8 s for 887 once the model server kept its system turn on disk
# (2026-12-07, later); 13 min 47 s for 918 and 14 min 25 s for 920 (2026-12-07, twentieth session). The twenty slowest are listed at the end, to know what to trim.
# The session fixtures (embedded database, Ray head, model server) start in each worker that needs them: at
# most four workers, whatever the core count. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

check: lint test

# The agent measured with the embedded model: the smoke suite (CI, a few minutes) or everything (under an hour).
# The embedded lab's parts the eval needs are started if they are down, and stopped again afterwards.
eval-smoke: $(STAMP)
	$(BIN)/labops eval --suite smoke --model local --min-pass-rate 1.0 --out .labops/eval-reports/smoke

eval: $(STAMP)
	$(BIN)/labops eval --model local

lab-up: $(STAMP)
	$(BIN)/labops lab up

lab-down: $(STAMP)
	$(BIN)/labops lab down

clean:
	-test -x $(BIN)/labops && $(BIN)/labops lab down
	rm -rf $(VENV) .labops build *.egg-info .mypy_cache .ruff_cache .pytest_cache
