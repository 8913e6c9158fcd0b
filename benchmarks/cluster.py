"""The benchmark matrix on a Ray cluster: one Ray task per cell (convert, validate, measure: `run_cell`).

Ray is imported only here and only when a matrix runs on a cluster, so `import bmsdk` stays light. A cell that
names a device (`cfg.devices[target]`, or "device" in a cell's options) runs on a worker holding that Ray resource;
one no worker holds is skipped with the reason before anything is submitted. Cells never raise, so an exception
from Ray means the worker died: the cell is resubmitted (Ray places it on a live worker) up to `max_attempts`, then
reported failed with every attempt's reason. Artifacts come back through the object store as tar bytes and are
checksummed on arrival, or stay in a shared `artifact_store` folder and are checksummed there.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bmsdk.artifact import open_artifact
from bmsdk.benchmarks.devices import fingerprint, resources
from bmsdk.benchmarks.harness import (
    BenchConfig,
    CellContext,
    assemble,
    cell_key,
    one_line,
    prepare,
    run_cell,
    source_cell,
)
from bmsdk.benchmarks.runners import runner_for
from bmsdk.errors import BackendUnavailableError, BmsdkError, IntegrityError
from bmsdk.progress import SILENT, Progress

INSTALL = "pip install 'bmsdk[cluster]'"
MAX_ATTEMPTS = 3  # runs of one cell whose worker died, before it is reported failed
CHECK_SECONDS = 2.0  # how often pending cells are checked against the devices still in the cluster


def import_ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError(
            "--cluster runs the matrix on Ray, which is not installed", f"{INSTALL} (or drop --cluster)"
        ) from None
    return ray


@contextmanager
def connect(address: str):
    """Ray for `address`: "local" or "local:N" starts a one-node cluster in this process with N worker slots
    (default: the CPU count), anything else is the address of a running cluster (`ray start --head`). A Ray
    already initialised by the caller is used as it is and left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address == "local" or address.startswith("local:"):
        count = address.partition(":")[2]
        if count and not count.isdigit():
            raise BmsdkError(f"--cluster {address}: N in local:N must be a whole number", "e.g. --cluster local:2")
        ray.init(
            address="local",  # a new cluster even where another one (or a stale record of one) is on this machine
            num_cpus=int(count) if count else os.cpu_count(),
            resources=resources(),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise BmsdkError(
                f"cannot reach the Ray cluster at {address} ({one_line(e)})",
                "start one with `ray start --head` and pass its address, or use --cluster local:2",
            ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


# --- artifacts through the object store --------------------------------------------------------------------------


def folder_digest(path: Path) -> str:
    """sha256 over every file of an artifact (relative names and bytes, in sorted order)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def pack(path: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=path.name)
    return buf.getvalue()


def unpack(data: bytes, folder: Path, digest: str) -> Path:
    """The artifact from `pack` under `folder`, or IntegrityError when it does not match the worker's digest."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        name = tar.getnames()[0].split("/")[0]
        tar.extractall(folder, filter="data")
    path = folder / name
    if folder_digest(path) != digest:
        raise IntegrityError(f"artifact {name} changed on its way from the worker", "run the cell again")
    return path


# --- the tasks ----------------------------------------------------------------------------------------------------


def _on_path(sys_path: list[str]) -> None:
    """The driver's import path on the worker too: factories such as `pkg.module:function` must import there."""
    for entry in reversed(sys_path):
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.insert(0, entry)


def _worker(ray) -> dict:
    context = ray.get_runtime_context()
    return {"node": context.get_node_id(), "ip": ray.util.get_node_ip_address(), **fingerprint()}


class Whereabouts:
    """A small actor on the driver's node: which node each attempt of a cell started on, so that the retry of a cell
    whose worker died avoids that node (a worker can die while its node lives on, e.g. a runtime that crashes)."""

    def __init__(self):
        self.nodes: dict = {}

    def started(self, key, node: str) -> None:
        self.nodes[key] = node

    def node_of(self, key) -> str | None:
        return self.nodes.get(key)


def cell_task(
    cfg: BenchConfig, spec: tuple, eval_set, probe, sys_path: list[str], device: str | None, store, where=None, key=None
):
    """One cell on a worker: (cell, artifact bytes or None, the probe it used)."""
    import ray

    if where is not None:  # waited for: a worker that dies right after must still have said where it was
        try:
            ray.get(where.started.remote(key, ray.get_runtime_context().get_node_id()), timeout=30)
        except Exception:  # without the record the retry may land on the same node; the cell still runs
            pass
    _on_path(sys_path)
    work = Path(store) if store else Path(tempfile.mkdtemp(prefix="bmsdk-cell-"))
    ctx = CellContext(cfg.artifacts_dir or work, eval_set, probe)
    cell = run_cell(cfg, spec, ctx, SILENT, runner_for(device))
    cell["worker"] = _worker(ray)
    cell["device"] = device or "any CPU worker"
    bundle = None
    if "artifact" in cell:
        path = Path(cell["artifact"])
        cell["artifact_sha256"] = folder_digest(path)
        if not store and not cfg.artifacts_dir:  # nowhere shared: the bytes travel with the result
            bundle = pack(path)
    return cell, bundle, ctx.probe


def source_task(cfg: BenchConfig, artifact: str, bundle: bytes | None, digest: str, probe, sys_path: list[str]):
    import ray

    _on_path(sys_path)
    path = unpack(bundle, Path(tempfile.mkdtemp(prefix="bmsdk-src-")), digest) if bundle else Path(artifact)
    path, manifest = open_artifact(path)
    return {**source_cell(cfg, path, manifest, probe), "worker": _worker(ray)}


# --- the driver ---------------------------------------------------------------------------------------------------


def cell_device(cfg: BenchConfig, spec: tuple) -> str | None:
    options = spec[3] if len(spec) > 3 else {}
    return (options or {}).get("device") or (cfg.devices or {}).get(spec[0])


def resolve_device(wanted: str | None, held: dict[str, float]) -> str | None:
    """The resource name a cell asks Ray for: `wanted` exactly, or the first held resource under it
    ("gpu" -> "gpu:nvidia-h100")."""
    if wanted is None or wanted in held:
        return wanted
    return next((name for name in sorted(held) if name.startswith(wanted + ":")), None)


def other_node(ray, avoid: set[str], device: str | None) -> str | None:
    """A live node outside `avoid` that can take the cell (holds its device, or has CPUs for it)."""
    for node in ray.nodes():
        held = node.get("Resources", {})
        if node.get("Alive") and node["NodeID"] not in avoid and held.get(device or "CPU", 0) >= 1:
            return node["NodeID"]
    return None


def _held(ray) -> dict[str, float]:
    return {k: v for k, v in ray.cluster_resources().items() if not k.startswith(("node:", "memory", "object_store"))}


def run_on_cluster(
    cfg: BenchConfig,
    out_dir: Path,
    address: str,
    progress: Progress = SILENT,
    done: dict | None = None,
    on_cell=None,
    artifact_store: str | Path | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> dict:
    """The matrix as Ray tasks; the same report as `run_benchmark`, each cell naming its worker and device."""
    ctx = prepare(cfg, out_dir)
    done = dict(done or {})
    source = done.pop(None, None)
    store = str(Path(artifact_store).resolve()) if artifact_store else None
    with connect(address) as ray:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(max_retries=0)(cell_task)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        where = ray.remote(num_cpus=0)(Whereabouts).options(scheduling_strategy=here).remote()
        avoided: dict[int, set[str]] = {}  # cell index -> nodes where one of its workers died
        src_task = ray.remote(max_retries=0)(source_task)
        eval_ref = ray.put(ctx.eval_set)
        sys_path = [p for p in sys.path if p]
        matrix = cfg.matrix()
        cells: list[dict | None] = [done.get(cell_key(spec)) for spec in matrix]
        attempts: dict[int, list[str]] = {}
        pending: dict = {}  # object ref -> (cell index, device resource)
        source_ref = None
        held = _held(ray)
        progress.info(f"cluster: {', '.join(f'{k}={v:g}' for k, v in sorted(held.items()))}")

        def submit(i: int) -> None:
            spec = matrix[i]
            wanted = cell_device(cfg, spec)
            device = resolve_device(wanted, _held(ray))
            if wanted and device is None:
                cells[i] = _skipped(spec, f"needs device {wanted}, which no worker of the cluster holds")
                return
            options = {"resources": {device: 1}} if device else {"num_cpus": max(1, cfg.threads or 1)}
            strategy = "DEFAULT" if device else "SPREAD"
            if avoided.get(i) and (elsewhere := other_node(ray, avoided[i], device)):
                # not where its worker died; if that node dies too, the task fails and is retried once more
                strategy = NodeAffinitySchedulingStrategy(elsewhere, soft=False)
            key = (i, len(attempts.get(i, [])))
            ref = task.options(scheduling_strategy=strategy, **options).remote(
                cfg, spec, eval_ref, ctx.probe, sys_path, device, store, where, key
            )
            pending[ref] = (i, device, key)

        for i, cell in enumerate(cells):
            if cell is None:
                submit(i)
        last_check = time.monotonic()
        while pending or source_ref is not None:
            refs = list(pending) + ([source_ref] if source_ref is not None else [])
            ready, _ = ray.wait(refs, num_returns=1, timeout=CHECK_SECONDS)
            for ref in ready:
                if ref is source_ref:
                    source_ref, source = None, _get_source(ray, ref)
                    continue
                i, device, key = pending.pop(ref)
                try:
                    cell, bundle, probe = ray.get(ref)
                except ray.exceptions.RayError as e:  # run_cell never raises: the worker (or its node) died
                    attempts.setdefault(i, []).append(_why(e))
                    if node := _node_of(ray, where, key):
                        avoided.setdefault(i, set()).add(node)
                    progress.info(f"    {' '.join(cell_key(matrix[i])).strip()}: worker lost ({attempts[i][-1]})")
                    if len(attempts[i]) < max_attempts:
                        submit(i)
                    else:
                        cells[i] = _failed(matrix[i], f"its worker died {len(attempts[i])} times", attempts[i])
                    continue
                cells[i] = _arrived(cell, bundle, out_dir, ctx, probe, attempts.get(i))
                progress.info(f"    {' '.join(cell_key(matrix[i])).strip()}: {cells[i]['status']}")
                if source is None and source_ref is None and "latency" in cells[i]:
                    artifact, digest = cells[i]["artifact"], cells[i]["artifact_sha256"]
                    ship = pack(Path(artifact)) if bundle else None
                    source_ref = src_task.options(num_cpus=max(1, cfg.threads or 1)).remote(
                        cfg, artifact, ship, digest, ctx.probe, sys_path
                    )
                if on_cell:
                    on_cell([c for c in cells if c is not None], source)
            if time.monotonic() - last_check > CHECK_SECONDS:  # a device that left the cluster: never wait for it
                last_check, live = time.monotonic(), _held(ray)
                for ref, (i, device, _) in list(pending.items()):
                    if device and device not in live:
                        ray.cancel(ref, force=True)
                        del pending[ref]
                        cells[i] = _failed(matrix[i], f"the worker holding {device} left the cluster", attempts.get(i))
    return assemble(cfg, ctx, cells, source)


def _arrived(cell: dict, bundle: bytes | None, out_dir: Path, ctx: CellContext, probe, tries: list | None) -> dict:
    """A finished cell on the driver: its artifact unpacked (or found in the shared store) and checksummed."""
    if ctx.probe is None:
        ctx.probe = probe
    if tries:
        cell["attempts"] = [*tries, "finished"]
    if "artifact" in cell:
        try:
            if bundle is not None:
                cell["artifact"] = str(unpack(bundle, ctx.artifacts, cell["artifact_sha256"]))
            elif folder_digest(Path(cell["artifact"])) != cell["artifact_sha256"]:
                raise IntegrityError(f"artifact {cell['artifact']} differs from what the worker wrote", "rerun it")
        except (OSError, BmsdkError) as e:
            cell.update(status="failed", reason=f"artifact did not arrive intact: {one_line(e)}")
    return cell


def _node_of(ray, where, key) -> str | None:
    try:
        return ray.get(where.node_of.remote(key), timeout=10)
    except Exception:  # the actor itself is gone: retry without avoiding a node
        return None


def _get_source(ray, ref) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:
        reason = f"the source could not be measured: its worker died ({_why(e)})"
        return {"target": "torch", "precision": "fp32", "status": "failed", "reason": reason, "latency": {}}


def _why(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def _base(spec: tuple) -> dict:
    target, precision, variant = cell_key(spec)
    return {"target": target, "precision": precision, **({"variant": variant} if variant else {})}


def _skipped(spec: tuple, reason: str) -> dict:
    return {**_base(spec), "status": "skipped", "reason": reason}


def _failed(spec: tuple, reason: str, tries: list[str] | None) -> dict:
    detail = f": {tries[-1]}" if tries else ""
    return {**_base(spec), "status": "failed", "reason": reason + detail, **({"attempts": tries} if tries else {})}
