"""The matrix on a real local multi-node Ray cluster: a head and two worker nodes (`ray start` on 127.0.0.1, each
with its own custom resource). Spread over both workers it gives the cells of the serial run; a cell needing a
device no worker holds is skipped with the reason; killing a worker mid-matrix still gives a complete report."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CNN_MEAN, CNN_STD, digit_images

TOKEN = secrets.token_hex(32)  # this cluster's own token, not the one `ray start` would save in ~/.ray
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(AUTH)  # before Ray is imported: the driver (this process) reads its auth mode then

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'bmsdk[cluster]'); CI installs it")

from bmsdk.benchmarks.cluster import run_on_cluster  # noqa: E402
from bmsdk.benchmarks.harness import BenchConfig, run_benchmark  # noqa: E402
from bmsdk.benchmarks.resume import write_partial  # noqa: E402
from bmsdk.benchmarks.shards import sharded_eval  # noqa: E402

FAST = dict(warmup=2, iterations=20, seconds=1.0, repeats=1)
RAY = str(Path(sys.executable).with_name("ray"))
NODE_MEMORY = str(80 * 2**20)  # object store per node: this machine is shared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(log: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, **AUTH}
    common = ["--block", "--node-ip-address=127.0.0.1", f"--object-store-memory={NODE_MEMORY}"]
    with open(log, "w") as out:
        return subprocess.Popen(
            [RAY, "start", *common, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _started(log: Path, args: tuple[str, ...], timeout: float = 120) -> subprocess.Popen:
    """`ray start` one node and wait until it says it runs; a node that timed out starting (this machine is
    shared and slow) is started again, up to three times."""
    for _ in range(3):
        proc = _start(log, *args)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if "Ray runtime started" in log.read_text():
                return proc
            time.sleep(0.5)
        _kill(proc)
    raise RuntimeError(f"ray start {' '.join(args)} did not start: {log.read_text()[-800:]}")


def _descendants(pid: int) -> list[int]:
    """pid and every process below it (the raylet, its object store, its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _kill(proc: subprocess.Popen) -> None:
    for pid in reversed(_descendants(proc.pid)):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def _cell_worker(proc: subprocess.Popen) -> int | None:
    """The pid of a worker of this node that is inside a cell (Ray titles a busy worker ray::FUNCTION), if any."""
    for pid in _descendants(proc.pid):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::cell_task"):
                return pid
        except OSError:
            pass
    return None


def _running_cell(proc: subprocess.Popen) -> bool:
    return _cell_worker(proc) is not None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(address, {"site_a": node, "site_b": node}): a head without CPUs for cells, and two one-CPU worker nodes."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("ray-logs")
    procs = {}
    try:
        head = ("--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false")
        procs["head"] = _started(logs / "head.log", head)
        for site in ("site_a", "site_b"):
            resources = f'--resources={{"{site}": 1}}'
            procs[site] = _started(logs / f"{site}.log", (f"--address={address}", "--num-cpus=1", resources))
        deadline = time.monotonic() + 120
        while True:
            try:
                if not ray.is_initialized():
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
                if sum(n["Alive"] for n in ray.nodes()) == 3:
                    break
            except ConnectionError:
                pass
            if time.monotonic() > deadline:
                tails = {p.name: p.read_text()[-600:] for p in logs.iterdir()}
                raise RuntimeError(f"the local Ray cluster did not come up in 120 s: {tails}")
            time.sleep(1)
        yield address, procs
    finally:
        ray.shutdown()
        for proc in procs.values():
            _kill(proc)


@pytest.fixture(scope="module")
def data(tmp_path_factory, cnn_module):
    import torch

    folder = tmp_path_factory.mktemp("cluster-data")
    images = digit_images(60, seed=3)
    with torch.inference_mode():
        x = (torch.from_numpy(images).float()[:, None] / 255.0 - CNN_MEAN) / CNN_STD
        labels = cnn_module(x).argmax(-1).numpy()
    np.savez(folder / "eval.npz", x=images, y=labels)
    np.savez(folder / "calib.npz", x=digit_images(16, seed=5))
    return folder / "eval.npz", folder / "calib.npz"


def _config(cnn_factory, data, cells) -> BenchConfig:
    eval_data, calibration = data
    return BenchConfig(
        source=cnn_factory,
        targets=[],
        precisions=[],
        cells=cells,
        eval_data=str(eval_data),
        calibration=str(calibration),
        name="cnn",
        **FAST,
    )


def _summary(report: dict) -> dict:
    return {
        (c["target"], c["precision"], c.get("variant", "")): (c["status"], (c.get("metric") or {}).get("accuracy"))
        for c in report["cells"]
    }


CELLS = [("onnx", "fp32"), ("onnx", "int8")]


@pytest.fixture(scope="module")
def serial(cnn_factory, data, tmp_path_factory):
    return run_benchmark(_config(cnn_factory, data, CELLS), tmp_path_factory.mktemp("serial"))


def test_matrix_across_two_workers_matches_the_serial_run(cluster, cnn_factory, data, serial, tmp_path):
    address, _ = cluster
    absent = ("onnx", "fp32", "phone", {"device": "android:nosuch"})
    report = run_on_cluster(_config(cnn_factory, data, [*CELLS, absent]), tmp_path, address)
    got = _summary(report)
    phone = got.pop(("onnx", "fp32", "phone"))
    assert got == _summary(serial) and all(status == "validated" for status, _ in got.values())
    assert phone == ("skipped", None)
    skipped = report["cells"][-1]
    assert "android:nosuch" in skipped["reason"] and "no worker" in skipped["reason"]
    ran = report["cells"][:2]
    assert len({c["worker"]["node"] for c in ran}) == 2  # spread over both worker nodes
    for c in ran:
        w = c["worker"]
        assert w["cpu"] and w["os"] and "onnxruntime" in w["runtimes"] and isinstance(w["isa"], list)
        assert Path(c["artifact"]).is_relative_to(tmp_path) and len(c["artifact_sha256"]) == 64  # came back
        assert c["latency"]["1"]["p50_ms"] > 0 and c["speedup_vs_source"]["1"] > 0
    assert report["source_model"]["latency"]["1"]["p50_ms"] > 0


def test_a_cell_runs_on_the_worker_holding_its_device(cluster, cnn_factory, data, tmp_path):
    address, _ = cluster
    cfg = _config(cnn_factory, data, [("onnx", "fp32")])
    cfg.devices = {"onnx": "site_b"}
    (cell,) = run_on_cluster(cfg, tmp_path, address)["cells"]
    site_b = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "site_b" in n["Resources"])
    assert cell["status"] == "validated" and cell["device"] == "site_b" and cell["worker"]["node"] == site_b


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """(a folder of 3 shard files, the same 90 examples as one file elsewhere); class mixes differ per shard, so
    averaging per-shard macro-F1 would be wrong."""
    folder, whole = tmp_path_factory.mktemp("shards"), tmp_path_factory.mktemp("whole") / "whole.npz"
    images = digit_images(90, seed=7)
    labels = np.arange(90) % 10
    labels[:40] = 3
    for i, part in enumerate(np.array_split(np.arange(90), 3)):
        np.savez(folder / f"shard-{i}.npz", x=images[part], y=labels[part])
    np.savez(whole, x=images, y=labels)
    return folder, whole


def _whole_set(artifact, whole) -> dict:
    import bmsdk
    from bmsdk.data import load_dataset

    with bmsdk.load(artifact) as model:
        return model.evaluate(load_dataset(whole))


def test_sharded_eval_on_the_cluster_equals_the_whole_set(cluster, cnn_onnx_artifact, shards):
    artifact, (folder, whole) = str(cnn_onnx_artifact.path), shards
    merged = sharded_eval(artifact, folder / "shard-0.npz", None)  # one shard, in this process
    assert merged["shards"] == 1 and merged["n"] == 30
    merged = sharded_eval(artifact, folder, cluster[0])
    expected = _whole_set(artifact, whole)
    assert merged["shards"] == 3 and merged["n"] == 90
    assert merged["accuracy"] == pytest.approx(expected["accuracy"])
    assert merged["macro_f1"] == pytest.approx(expected["macro_f1"])


def test_bench_scores_every_cell_on_every_shard(cluster, cnn_factory, data, shards, tmp_path):
    """`bench --eval-shards`: each cell's accuracy over all shards (one Ray task per cell and shard), the same as the
    serial run's and as the whole set's in one process; report.md lists them."""
    import bmsdk

    folder, whole = shards
    eval_data, calibration = data
    runs = {
        where: bmsdk.benchmark(
            cnn_factory,
            tmp_path / where,
            targets=["onnx"],
            precisions=["fp32", "int8"],
            eval_data=str(eval_data),
            calibration=str(calibration),
            cluster=address,
            eval_shards=folder,
            **FAST,
        )  # fmt: skip
        for where, address in (("cluster", cluster[0]), ("serial", None))
    }
    for where, result in runs.items():
        assert result.report["eval_shards"] == {"data": str(folder), "shards": 3}
        for cell in result.report["cells"]:
            metric, expected = cell["sharded_metric"], _whole_set(cell["artifact"], whole)
            assert metric["n"] == 90 and metric["shards"] == 3, where
            assert metric["accuracy"] == pytest.approx(expected["accuracy"]), where
            assert metric["macro_f1"] == pytest.approx(expected["macro_f1"]), where
        assert "Over all 3 shards" in result.paths["md"].read_text()
    pairs = zip(runs["cluster"].report["cells"], runs["serial"].report["cells"])
    assert all(a["sharded_metric"] == b["sharded_metric"] for a, b in pairs)


def test_eval_shards_without_data_files_is_refused_first(tmp_path, cnn_factory):
    import bmsdk
    from bmsdk.errors import DataError

    with pytest.raises(DataError, match="no shard files"):
        bmsdk.benchmark(cnn_factory, tmp_path / "out", eval_shards=tmp_path)


def test_a_cell_whose_worker_crashed_reruns_on_another_node(cluster, cnn_factory, data, tmp_path):
    """The worker process dies (a crashing runtime) while its node lives on: the retry goes to the other node."""
    address, procs = cluster
    crashed: list[str] = []

    def crash_when_busy():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            pid = _cell_worker(procs["site_a"])
            if pid:
                time.sleep(1.0)
                os.kill(pid, 9)
                crashed.append("site_a")
                return
            time.sleep(0.2)

    site = {
        name: next(n["NodeID"] for n in ray.nodes() if n["Alive"] and name in n["Resources"])
        for name in ("site_a", "site_b")
    }
    crasher = threading.Thread(target=crash_when_busy, daemon=True)
    crasher.start()
    report = run_on_cluster(_config(cnn_factory, data, [("onnx", "fp32"), ("onnx", "int8")]), tmp_path, address)
    crasher.join(timeout=60)
    assert crashed and all(n["Alive"] for n in ray.nodes() if n["NodeID"] in site.values())  # the node lives on
    retried = [c for c in report["cells"] if c.get("attempts")]
    assert retried and all(c["status"] == "validated" for c in report["cells"])
    for c in retried:
        assert c["worker"]["node"] == site["site_b"], c["attempts"]  # not the node whose worker crashed


def test_killing_a_worker_mid_matrix_still_gives_a_complete_report(cluster, cnn_factory, data, serial, tmp_path):
    """Runs last: it takes site_b away for good."""
    address, procs = cluster
    cells = [*CELLS, ("onnx", "fp16")]
    killed = threading.Event()

    def kill_when_busy():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not _running_cell(procs["site_b"]):
            time.sleep(0.2)
        time.sleep(1.0)  # inside the cell, not at its first line
        _kill(procs["site_b"])
        killed.set()

    site_a = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "site_a" in n["Resources"])
    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    cfg = _config(cnn_factory, data, cells)
    report = run_on_cluster(cfg, tmp_path, address, on_cell=lambda done, src: write_partial(tmp_path, cfg, done, src))
    killer.join(timeout=60)
    assert killed.is_set()
    got = _summary(report)
    assert {k: v for k, v in got.items() if k[1] != "fp16"} == _summary(serial)
    assert got[("onnx", "fp16", "")][0] == "validated"
    retried = [c for c in report["cells"] if c.get("attempts")]
    assert retried, "no cell was running on the killed worker"
    for c in retried:
        assert c["attempts"][-1] == "finished" and "Error" in c["attempts"][0]
        assert c["worker"]["node"] == site_a  # the retry ran on the surviving worker
    saved = (tmp_path / "report.json").read_text()  # the partial report kept every finished cell
    assert '"complete": false' in saved and saved.count('"status"') == len(cells)
