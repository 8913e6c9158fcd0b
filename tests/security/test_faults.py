"""Faults during a conversion: SIGTERM, SIGINT and SIGKILL leave no artifact, no staging folder, no temporary files.

The conversions run as real `bmsdk convert` processes on a factory whose model blocks inside the pipeline (the
stand-in for a long third-party call) and swallows the KeyboardInterrupt / SystemExit a signal raises, as
careless libraries do: bmsdk must stop anyway.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

BLOCKING_FACTORY = textwrap.dedent("""
    import os, pathlib, time
    import torch

    class Blocking(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, x):
            # loading the source runs the model too: block only once the conversion has begun to write its output
            writing = any(p.name.endswith(".partial") for p in pathlib.Path.cwd().iterdir())
            if writing and os.environ.get("BLOCK_IN_PIPELINE"):
                while True:  # a third-party call that takes forever and swallows interrupts
                    try:
                        time.sleep(3600)
                    except BaseException:
                        pass
            return self.conv(x).flatten(1)

    def make_model():
        model = Blocking()
        model.bmsdk_spec = {"input_shapes": {"x": [1, 1, 4, 4]}, "task": "image-classification"}
        return model
""")


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "blocking_model.py").write_text(BLOCKING_FACTORY)
    (tmp_path / "tmp").mkdir()
    return tmp_path


def _start(workspace: Path, out: Path, block: bool) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(workspace / "tmp"), "PYTHONPATH": str(workspace)}
    env.pop("BLOCK_IN_PIPELINE", None)
    if block:
        env["BLOCK_IN_PIPELINE"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "bmsdk.cli", "convert", "blocking_model:make_model", "-o", str(out), "-q"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_staging(proc: subprocess.Popen, folder: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name.endswith(".partial") for p in folder.iterdir()):
            time.sleep(1.0)  # inside the blocking call by now
            return
        if proc.poll() is not None:
            pytest.fail(f"the conversion ended before staging: {proc.stderr.read()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the conversion never started writing")


def _leftovers(workspace: Path) -> list[str]:
    partials = [p.name for p in workspace.iterdir() if p.name.endswith(".partial") or p.name.endswith(".old")]
    temporary = [p.name for p in (workspace / "tmp").iterdir() if p.name.startswith("bmsdk-")]
    return partials + temporary


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_a_blocking_call_stops_and_leaves_nothing(workspace, sig, code):
    out = workspace / "model.bmsdk"
    proc = _start(workspace, out, block=True)
    _wait_for_staging(proc, workspace)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{sig.name} did not stop the conversion")
    assert proc.returncode == code
    assert not out.exists()
    assert _leftovers(workspace) == []


def test_sigkill_leftovers_are_removed_by_the_next_run(workspace):
    out = workspace / "model.bmsdk"
    proc = _start(workspace, out, block=True)
    _wait_for_staging(proc, workspace)
    proc.kill()
    proc.wait(timeout=30)
    assert _leftovers(workspace), "SIGKILL cannot clean up: a staging folder is expected here"
    again = _start(workspace, out, block=False)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert (out / "bmsdk.json").is_file()
    assert _leftovers(workspace) == []
