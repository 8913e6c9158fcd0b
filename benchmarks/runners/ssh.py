"""A Linux board over SSH (a Jetson, a Raspberry Pi): copy the artifact there, time it with bmsdk on the board.

The board needs bmsdk with the artifact's runtime installed; it runs `python -m bmsdk.benchmarks.runners.remote`
(the local runner) on the copied artifact and prints the cell as JSON. Commands are built by `commands()`, so
they can be checked without a board.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from bmsdk.benchmarks.runners.base import Runner
from bmsdk.errors import RunError

REMOTE_DIR = "/tmp/bmsdk-bench"


class SshRunner(Runner):
    name = "ssh"

    def __init__(self, host: str, python: str = "python3", remote_dir: str = REMOTE_DIR, run=subprocess.run):
        self.host, self.python, self.remote_dir, self._run = host, python, remote_dir, run
        self.device = f"ssh:{host}"

    def commands(self, path: Path, cfg) -> list[list[str]]:
        remote = f"{self.remote_dir}/{Path(path).name}"
        measure = [
            self.python, "-m", "bmsdk.benchmarks.runners.remote", remote,
            "--batches", ",".join(map(str, cfg.batches)), "--threads", str(cfg.threads or 1),
            "--warmup", str(cfg.warmup), "--iterations", str(cfg.iterations),
            "--seconds", f"{cfg.seconds:g}", "--repeats", str(cfg.repeats),
        ]  # fmt: skip
        return [
            ["ssh", "-o", "BatchMode=yes", self.host, f"mkdir -p {shlex.quote(self.remote_dir)}"],
            ["scp", "-o", "BatchMode=yes", "-r", "-q", str(path), f"{self.host}:{self.remote_dir}/"],
            ["ssh", "-o", "BatchMode=yes", self.host, shlex.join(measure)],
        ]

    def measure(self, path: Path, probe, cfg) -> dict:
        out = ""
        for argv in self.commands(path, cfg):
            done = self._run(argv, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
                raise RunError(f"{argv[0]} to {self.host} exited {done.returncode}: {tail[0]}", "check the board")
            out = done.stdout
        result = json.loads(out.strip().splitlines()[-1])
        return {**result, "backend": f"{result.get('backend', '?')} on {self.host} (ssh)"}
