"""The Android and iOS text generators (examples/android, examples/ios) against vectors of a tiny real Llama.

generation_fixture.py builds the vectors with bmsdk.tasks.generation_vectors from a random-init
`LlamaForCausalLM` step function (its greedy tokens checked against `model.generate`), for dynamic and for fixed
prefill lengths (padded and chunked prompts), plus BPE tokenizer cases of three styles; then the JVM core's
GenerationTest/SamplerTest and the Swift package's GenerationTests replay them (feeds checked step by step, tokens,
prompt ids and text compared, streaming, stop strings, a full cache). Fails when a JUnit or XCTest test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from generation_fixture import PREFILL_LENGTHS, write_generation_folders

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPT = EXAMPLES / "android" / "run-jvm-tests.sh"
JUNIT = Path("/usr/share/java/junit4.jar")
IOS = EXAMPLES / "ios"
SWIFT = shutil.which("swift") or "/opt/swift/usr/bin/swift"
JAVA_TESTS = "dev.bmsdk.android.GenerationTest dev.bmsdk.android.SamplerTest"


@pytest.fixture(scope="module")
def generation_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("generation-vectors")
    write_generation_folders(root)
    return root


def test_fixed_prefill_lengths_give_the_tokens_of_dynamic_ones(generation_dir):
    dynamic = json.loads((generation_dir / "tiny-llama-dynamic" / "vectors.json").read_text())
    padded = json.loads((generation_dir / "tiny-llama-prefill" / "vectors.json").read_text())
    assert [c["token_ids"] for c in padded["cases"]] == [c["token_ids"] for c in dynamic["cases"]]
    real = [len(s["input_ids"]) for c in padded["cases"] for s in c["steps"]]
    assert max(real) == max(PREFILL_LENGTHS) and any(len(c["prompt_ids"]) > max(real) for c in padded["cases"])
    assert any(n not in PREFILL_LENGTHS for n in real)  # a chunk padded to a longer length


def test_android_generator_replays_the_vectors(generation_dir):
    assert shutil.which("javac") and JUNIT.is_file(), "needs a JDK and Debian's junit4: run `make install`"
    env = {**os.environ, "JUNIT_TESTS": JAVA_TESTS}
    run = subprocess.run(
        ["bash", str(SCRIPT), str(generation_dir)], env=env, capture_output=True, text=True, timeout=600
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-4000:]
    assert "OK (" in report, report[-2000:]


@pytest.mark.skipif(not Path(SWIFT).exists(), reason="no Swift toolchain (install Swift 6 or put it on PATH)")
def test_swift_generator_replays_the_vectors(generation_dir):
    env = {
        **os.environ,
        "BMSDK_VECTORS_DIR": str(generation_dir),
        "PATH": f"{Path(SWIFT).parent}:{os.environ.get('PATH', '')}",
    }
    run = subprocess.run(
        [SWIFT, "test", "--package-path", str(IOS), "--filter", "GenerationTests|SamplerTests"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "Executed" in output and " 0 failures" in output, output[-3000:]
