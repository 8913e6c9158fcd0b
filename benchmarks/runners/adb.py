"""An Android phone over adb: push the artifact's .tflite and time it with LiteRT's `benchmark_model` there.

Every adb call goes through `Adb`, so a test replays a recorded transcript instead of a phone (`Transcript`).
`benchmark_model` must already be on the phone (`adb push benchmark_model /data/local/tmp/`); it times batch 1
with the model's own input shape, and prints a mean (and a median only when built with percentiles), so the cell
says which statistic its p50_ms is.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bmsdk.artifact import open_artifact
from bmsdk.benchmarks.runners.base import Runner
from bmsdk.errors import RunError, UnsupportedError

REMOTE_DIR = "/data/local/tmp/bmsdk"
BENCHMARK_MODEL = "/data/local/tmp/benchmark_model"


class Adb:
    """`adb -s SERIAL ...`, returning stdout; a non-zero exit is a RunError naming the command."""

    def __init__(self, serial: str, run=subprocess.run, timeout: float = 600):
        self.serial, self._run, self.timeout = serial, run, timeout

    def __call__(self, *args: str) -> str:
        argv = ["adb", "-s", self.serial, *args]
        try:
            out = self._run(argv, capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RunError(f"{' '.join(argv)} did not run ({e})", "check `adb devices` lists the phone") from None
        if out.returncode != 0:
            tail = (out.stderr or out.stdout or "").strip().splitlines()[-1:] or [""]
            raise RunError(f"{' '.join(argv)} exited {out.returncode}: {tail[0]}", "check the phone and adb")
        return out.stdout


class Transcript:
    """A recorded session: [(argv, stdout, returncode), ...] replayed in order in place of subprocess.run."""

    def __init__(self, calls: list[tuple[list[str], str, int]]):
        self.calls, self.seen = list(calls), []

    def __call__(self, argv, **_):
        expected, stdout, code = self.calls.pop(0)
        if list(argv) != list(expected):
            raise AssertionError(f"adb call {argv} where the transcript has {expected}")
        self.seen.append(list(argv))
        return subprocess.CompletedProcess(argv, code, stdout, "")


STAT = re.compile(r"count=(\d+)\s+first=(\d+)\s+curr=(\d+)\s+min=(\d+)\s+max=(\d+)\s+avg=([\d.e+]+)\s+std=(\d+)(.*)")
TIMINGS = re.compile(
    r"Inference timings in us: Init: (\d+), First inference: (\d+), Warmup \(avg\): ([\d.e+]+), "
    r"Inference \(avg\): ([\d.e+]+)"
)
MEMORY = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=([\d.]+) overall=([\d.]+)")


def parse_benchmark_model(text: str) -> dict:
    """The timed runs of `benchmark_model` output (the last count=... line is the timed runs, the first warm-up)."""
    stats = [m for m in map(STAT.search, text.splitlines()) if m]
    timings = TIMINGS.search(text)
    if not stats or not timings:
        raise RunError("benchmark_model printed no timings", "run it by hand on the phone and read its output")
    count, first, _, low, high, avg, std, rest = stats[-1].groups()
    median = re.search(r"median=(\d+)", rest)
    percentiles = {k: float(v) / 1e3 for k, v in re.findall(r"\b(p\d+)=(\d+)", rest)}
    latency = {
        "p50_ms": float(median.group(1)) / 1e3 if median else float(avg) / 1e3,
        "statistic": "median" if median else "mean (benchmark_model printed no median)",
        "mean_ms": float(avg) / 1e3,
        "min_ms": float(low) / 1e3,
        "max_ms": float(high) / 1e3,
        "std_ms": float(std) / 1e3,
        "runs": int(count),
        **{f"{k}_ms": v for k, v in percentiles.items()},
    }
    latency["throughput_per_s"] = 1e3 / latency["p50_ms"]
    memory = MEMORY.search(text)
    return {
        "load_ms": float(timings.group(1)) / 1e3,
        "first_inference_ms": float(timings.group(2)) / 1e3,
        "latency": {"1": latency},
        **({"rss_delta_mb": float(memory.group(2))} if memory else {}),
    }


class AdbRunner(Runner):
    name = "adb"

    def __init__(self, serial: str, adb: Adb | None = None, binary: str = BENCHMARK_MODEL):
        self.serial, self.adb, self.binary = serial, adb or Adb(serial), binary
        self.device = f"android:{serial}"

    def phone(self) -> dict:
        props = ("ro.product.model", "ro.build.version.release", "ro.product.cpu.abi", "ro.soc.model")
        return {p: self.adb("shell", "getprop", p).strip() for p in props}

    def measure(self, path: Path, probe, cfg) -> dict:
        folder, manifest = open_artifact(path)
        model = folder / manifest.model_file
        if model.suffix != ".tflite":
            raise UnsupportedError(f"the adb runner times .tflite models, not {model.name}", "use a tflite cell")
        remote = f"{REMOTE_DIR}/{folder.name}-{model.name}"
        self.adb("shell", "mkdir", "-p", REMOTE_DIR)
        self.adb("push", str(model), remote)
        out = self.adb(
            "shell",
            self.binary,
            f"--graph={remote}",
            f"--num_threads={cfg.threads or 1}",
            f"--warmup_runs={cfg.warmup}",
            f"--num_runs={cfg.iterations}",
            f"--max_secs={cfg.seconds:g}",
        )
        result = parse_benchmark_model(out)
        return {
            "backend": f"litert benchmark_model on {self.serial} (adb)",
            "device_real": True,
            **result,
            "phone": self.phone(),
        }
