"""Progress for long steps: `with progress.step("building onnx int8"): ...` and `progress.info("...")`.

Every step and info line is a record on the "bmsdk" logger (a step's start at DEBUG, its end at INFO:
"building onnx int8 done (3.1s)"), so an application that configures logging sees them even with the silent default.
An enabled `Progress` also draws them on its stream (stderr by default) through one renderer per stream:

- not a terminal (CI, pipes, files): plain lines, no animation, no carriage returns; one line when a step starts
  ("  building onnx int8 ...") and one when it ends ("  building onnx int8: done (3.1s)" / ": failed (0.2s)"),
  indented two spaces per nesting level, so nested steps never share a line;
- a terminal: a live block (rich) with a spinner and the elapsed time of the innermost running step under its
  running parents, indented as a tree; finished steps leave their done/failed line behind, a parent's "..." line
  is written when its first child finishes, so the scrollback reads like the plain output.

`Progress(enabled=False)` (and the shared `SILENT`) draws nothing; `configure_logging(-1)` silences every Progress.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import weakref

__all__ = ["Progress", "SILENT", "logger", "format_elapsed"]

logger = logging.getLogger("bmsdk")
logger.addHandler(logging.NullHandler())  # library convention: no "No handlers could be found" fallback output

PROGRESS_ATTR = "bmsdk_progress"  # set on records that a Progress emits: "start", "done", "failed" or "info"


class _State:
    progress_allowed = True  # False after configure_logging(-1): every Progress stays silent


state = _State()


INDENT = "  "


def format_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


class _Step:
    __slots__ = ("message", "depth", "start", "renderer", "parent", "header_shown")

    def __init__(self, message: str, depth: int, renderer, parent: _Step | None):
        self.message = message
        self.depth = depth
        self.start = time.perf_counter()
        self.renderer = renderer
        self.parent = parent  # the nearest running step drawn by the same renderer, in this thread
        self.header_shown = False

    @property
    def indent(self) -> str:
        return INDENT * (self.depth + 1)


_local = threading.local()  # each thread's running steps, outermost first (from every Progress)


def _stack() -> list[_Step]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _one_line(text) -> str:
    """A step's message on one line: a newline or carriage return in it would break the layout."""
    return " ".join(str(text).splitlines())


# --- renderers -------------------------------------------------------------------------


class PlainRenderer:
    """One line per event, written whole: safe for pipes, files and CI logs."""

    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.RLock()

    def _write(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def start(self, step: _Step) -> None:
        self._write(f"{step.indent}{_one_line(step.message)} ...")

    def end(self, step: _Step, ok: bool, elapsed: float) -> None:
        self._write(f"{step.indent}{_one_line(step.message)}: {'done' if ok else 'failed'} ({format_elapsed(elapsed)})")

    def line(self, text: str) -> None:
        self._write(str(text))


class _LiveBlock:
    """What the live area shows: every running step, indented by depth; the innermost ones with a spinner."""

    def __init__(self, renderer: TerminalRenderer):
        self.renderer = renderer

    def __rich_console__(self, console, options):  # runs on rich's refresh thread: reads a snapshot, takes no lock
        from rich.text import Text

        now = time.perf_counter()
        active = list(self.renderer.active)
        parents = {id(s.parent) for s in active if s.parent is not None}
        for step in active:
            text = Text(step.indent, no_wrap=True, overflow="ellipsis")
            if id(step) in parents:
                text.append("▾ ", style="dim")
            else:
                text.append_text(self.renderer.spinner.render(now))
                text.append(" ")
            text.append(_one_line(step.message))
            text.append(f"  {format_elapsed(now - step.start)}", style="dim")
            yield text


class TerminalRenderer:
    """A rich Live block for the running steps; finished steps and info lines are printed above it."""

    def __init__(self, stream):
        from rich.console import Console
        from rich.spinner import Spinner

        self.stream = stream
        self.lock = threading.RLock()
        self.console = Console(
            file=stream, force_terminal=True, highlight=False, markup=False, emoji=False, soft_wrap=True
        )
        self.spinner = Spinner("dots", style="cyan")
        self.active: list[_Step] = []
        self.live = None

    def _print(self, text) -> None:
        self.console.print(text)

    def _show_headers(self, step: _Step | None) -> None:
        """Before a line inside `step`, write the "..." lines of it and its parents that are not written yet."""
        chain = []
        while step is not None and not step.header_shown:
            chain.append(step)
            step = step.parent
        for s in reversed(chain):
            s.header_shown = True
            self._print(f"{s.indent}{_one_line(s.message)} ...")

    def start(self, step: _Step) -> None:
        with self.lock:
            self.active = [*self.active, step]  # a new list: the refresh thread may be iterating the old one
            if self.live is None:
                from rich.live import Live

                self.live = Live(
                    _LiveBlock(self),
                    console=self.console,
                    refresh_per_second=10,
                    transient=True,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self.live.start()
            else:
                self.live.refresh()

    def end(self, step: _Step, ok: bool, elapsed: float) -> None:
        from rich.text import Text

        with self.lock:
            self.active = [s for s in self.active if s is not step]
            self._show_headers(step.parent)
            text = Text(f"{step.indent}{_one_line(step.message)}: ")
            text.append("done" if ok else "failed", style="green" if ok else "bold red")
            text.append(f" ({format_elapsed(elapsed)})")
            self._print(text)
            if not self.active and self.live is not None:
                live, self.live = self.live, None
                live.stop()

    def line(self, text: str) -> None:
        from rich.text import Text

        with self.lock:
            stack = _stack()
            mine = next((s for s in reversed(stack) if s.renderer is self), None)
            self._show_headers(mine)
            self._print(Text(str(text)))


_renderers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_unweakable: dict = {}  # streams that refuse weak references, by id (kept alive with their renderer)
_registry_lock = threading.Lock()


def _is_terminal(stream) -> bool:
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def renderer_for(stream):
    """The one renderer that draws on `stream`: every Progress and the CLI's log handler on it share it."""
    with _registry_lock:
        try:
            renderer = _renderers.get(stream)
        except TypeError:
            entry = _unweakable.get(id(stream))
            renderer = entry[1] if entry and entry[0] is stream else None
        if renderer is None:
            renderer = PlainRenderer(stream)
            if _is_terminal(stream):
                try:
                    renderer = TerminalRenderer(stream)
                except ImportError:  # rich missing: plain lines still work
                    pass
            try:
                _renderers[stream] = renderer
            except TypeError:
                _unweakable[id(stream)] = (stream, renderer)
        return renderer


# --- the public API --------------------------------------------------------------------


class Progress:
    """`Progress(enabled=True, stream=None)`: steps and info lines on `stream` (sys.stderr at the time of the call)."""

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream

    def _renderer(self):
        if not self.enabled or not state.progress_allowed:
            return None
        return renderer_for(self.stream if self.stream is not None else sys.stderr)

    def info(self, message: str) -> None:
        logger.info("%s", message, extra={PROGRESS_ATTR: "info"})
        renderer = self._renderer()
        if renderer is not None:
            with contextlib.suppress(Exception):  # a closed stream must not fail the work it reports on
                renderer.line(message)

    @contextlib.contextmanager
    def step(self, message: str):
        renderer = self._renderer()
        stack = _stack()
        parent = next((s for s in reversed(stack) if s.renderer is renderer), None) if renderer is not None else None
        depth = parent.depth + 1 if parent is not None else (0 if renderer is not None else len(stack))
        step = _Step(message, depth, renderer, parent)
        stack.append(step)
        extra = {PROGRESS_ATTR: "start", "bmsdk_depth": depth}
        logger.debug("%s ...", message, extra=extra)
        if renderer is not None:
            with contextlib.suppress(Exception):
                renderer.start(step)
        ok = False
        try:
            yield
            ok = True
        finally:
            elapsed = time.perf_counter() - step.start
            with contextlib.suppress(ValueError):
                stack.remove(step)
            if renderer is not None:
                with contextlib.suppress(Exception):
                    renderer.end(step, ok, elapsed)
            outcome = "done" if ok else "failed"
            logger.info(
                "%s %s (%s)",
                message,
                outcome,
                format_elapsed(elapsed),
                extra={PROGRESS_ATTR: outcome, "bmsdk_depth": depth, "bmsdk_elapsed": elapsed},
            )


SILENT = Progress(enabled=False)
