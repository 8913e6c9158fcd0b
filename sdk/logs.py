"""The `bmsdk` logger, and the one place that configures it: `configure_logging`, for the command line.

Library code logs through `logging.getLogger("bmsdk")` (or a child, `bmsdk.something`) and never adds handlers
or sets levels: an application that imports bmsdk decides where its records go
(`logging.basicConfig(level=logging.INFO)` shows progress steps as "building onnx int8 done (3.1s)").
Only the CLI calls `configure_logging`, which hangs one
console handler on "bmsdk" and leaves the root logger alone.
"""

from __future__ import annotations

import logging
import os
import sys

from .progress import PROGRESS_ATTR, logger, renderer_for, state

_LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


class _ConsoleFormatter(logging.Formatter):
    """INFO as the bare message; other levels prefixed ("warning: ..."); at debug, the logger's name too."""

    def __init__(self, verbose: bool = False):
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self.verbose and record.levelno != logging.INFO:
            return f"{record.levelname.lower()} [{record.name}]: {text}"
        if record.levelno != logging.INFO:
            return f"{record.levelname.lower()}: {text}"
        return text


class ConsoleHandler(logging.Handler):
    """Writes bmsdk records to a stream (stderr by default, looked up at each record) through the same renderer
    that draws progress steps, so that a warning printed during a live step does not break its line.

    Records a `Progress` emitted are skipped: an enabled Progress draws them itself, a disabled one is meant to be
    quiet.
    """

    def __init__(self, stream=None, level: int = logging.NOTSET):
        super().__init__(level)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, PROGRESS_ATTR, None) is not None:
            return
        try:
            renderer_for(self.stream if self.stream is not None else sys.stderr).line(self.format(record))
        except Exception:  # a broken stream must not take the command down with it
            self.handleError(record)


def configure_logging(verbosity: int = 0, stream=None) -> logging.Logger:
    """Set up console output for the CLI: -1 (-q) warnings only and no progress; 0 progress and info; 1 (-v) debug.

    Idempotent: a second call updates the one handler it added instead of adding another. Touches only the "bmsdk"
    logger (its level, one handler, and propagate=False so an application's root handlers don't print it twice);
    the root logger and other libraries' loggers are left as they are.
    """
    verbosity = max(-1, min(1, int(verbosity)))
    level = _LEVELS[verbosity]
    handler = next((h for h in logger.handlers if isinstance(h, ConsoleHandler)), None)
    if handler is None:
        handler = ConsoleHandler()
        logger.addHandler(handler)
    handler.stream = stream
    handler.setLevel(level)
    handler.setFormatter(_ConsoleFormatter(verbose=verbosity > 0))
    logger.setLevel(level)
    logger.propagate = False
    state.progress_allowed = verbosity >= 0
    return logger


# converters' loggers that report at WARNING what a user converting a model cannot act on
THIRD_PARTY_LOGGERS = (
    "torch",
    "torchao",
    "onnxscript",
    "onnx_ir",
    "transformers",
    "coremltools",
    "litert_torch",
    "ai_edge_quantizer",
    "executorch",
    "modelopt",
)


def third_party_output(verbosity: int = 0) -> None:
    """What the CLI shows of its dependencies' output: their progress bars never (bmsdk draws its own); their
    Python warnings and WARNING logs with -v, once each, through the bmsdk console; only their errors otherwise.

    Nothing is filtered away globally: warnings are routed through logging (`logging.captureWarnings`), so a
    library user who calls bmsdk's API keeps whatever warning filters and logging setup they have.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if verbosity < 1 else "warning")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # converters' own progress bars
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbosity < 1:
        os.environ.setdefault("TORCH_LOGS", "-all")  # torch resets its loggers' levels on import; this is read then
    level = logging.WARNING if verbosity >= 1 else logging.ERROR
    for name in (*THIRD_PARTY_LOGGERS, "py.warnings"):
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    if verbosity >= 1 and not any(isinstance(h, ConsoleHandler) for h in warnings_logger.handlers):
        warnings_logger.addHandler(ConsoleHandler())
    if "transformers" in sys.modules:  # imported before main() (a library user, a test): it read the variables already
        sys.modules["transformers"].utils.logging.disable_progress_bar()
