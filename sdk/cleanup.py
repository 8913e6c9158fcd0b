"""Leaving nothing behind: temporary paths removed on every exit path, and signals that always stop bmsdk.

Paths that only exist while bmsdk works (a staged artifact, a private temporary folder) carry the process id in
their names, are tracked while the process lives, and are removed when it exits (normally, by exception, by
SIGTERM or SIGINT). A process killed with SIGKILL cannot clean up, so the next run removes the leftovers of
processes that no longer exist.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

GRACE_SECONDS = 10.0  # after a signal, how long Python may take to unwind before bmsdk exits regardless
_tracked: set[Path] = set()
_lock = threading.Lock()


def track(path: Path) -> Path:
    with _lock:
        _tracked.add(Path(path))
    return Path(path)


def untrack(path: Path) -> None:
    with _lock:
        _tracked.discard(Path(path))


def remove_tracked() -> None:
    with _lock:
        paths = list(_tracked)
        _tracked.clear()
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(remove_tracked)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, pattern: re.Pattern) -> list[Path]:
    """Remove entries of `folder` whose name matches `pattern` (a group 'pid') and whose process is gone."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and int(match.group("pid")) != os.getpid() and not pid_alive(int(match.group("pid"))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


PRIVATE_TMP = re.compile(r"bmsdk-(?P<pid>\d+)-\w+")


def private_tempdir() -> Path:
    """A temporary folder for this process, made the default for `tempfile` and child processes (TMPDIR), so that
    what converters and their libraries write there goes when bmsdk exits; leftovers of dead processes go first."""
    base = Path(tempfile.gettempdir())
    remove_stale(base, PRIVATE_TMP)
    path = track(Path(tempfile.mkdtemp(prefix=f"bmsdk-{os.getpid()}-", dir=base)))
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    return path


def _force_exit(code: int) -> None:
    remove_tracked()
    os._exit(code)


def _on_signal(signum, frame) -> None:
    """Unwind normally (finally blocks remove staged output); if a third-party call holds on, exit after a grace."""
    timer = threading.Timer(GRACE_SECONDS, _force_exit, args=(128 + signum,))
    timer.daemon = True
    timer.start()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def command_scope():
    """What one CLI command runs in: a private temporary folder, and (in the main thread) SIGTERM and SIGINT that
    stop bmsdk with exit 143 / 130 after cleaning up. Everything is put back afterwards."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    path = private_tempdir()
    try:
        yield path
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        untrack(path)
        shutil.rmtree(path, ignore_errors=True)
