"""Progress steps and the `bmsdk` logger: plain nested lines off a terminal, a live block on one, quiet modes,
records."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import threading

import pytest

from bmsdk import logs
from bmsdk.logs import ConsoleHandler, configure_logging
from bmsdk.progress import SILENT, Progress, format_elapsed

ELAPSED = r"\(\d+\.\ds\)"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _restore_bmsdk_logger():
    """configure_logging changes the process-wide "bmsdk" logger: start each test from a library's defaults (an
    earlier `bmsdk ... -q` in this process may have silenced progress), and put it back after."""
    logger = logging.getLogger("bmsdk")
    saved = (list(logger.handlers), logger.level, logger.propagate, logs.state.progress_allowed)
    logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, logs.ConsoleHandler)]
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    logs.state.progress_allowed = True
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
    logs.state.progress_allowed = saved[3]


def nested_run(progress: Progress) -> None:
    progress.info("bmsdk convert model -> onnx int8")
    with progress.step("loading source"):
        pass
    with progress.step("building onnx int8"):
        with progress.step("exporting"):
            progress.info("    opset 18")
        with progress.step("quantizing"):
            with progress.step("calibrating"):
                pass


def test_nested_steps_are_whole_indented_lines_off_a_terminal():
    stream = io.StringIO()
    nested_run(Progress(stream=stream))
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    expected = [
        r"bmsdk convert model -> onnx int8",
        r"  loading source \.\.\.",
        rf"  loading source: done {ELAPSED}",
        r"  building onnx int8 \.\.\.",
        r"    exporting \.\.\.",
        r"    opset 18",
        rf"    exporting: done {ELAPSED}",
        r"    quantizing \.\.\.",
        r"      calibrating \.\.\.",
        rf"      calibrating: done {ELAPSED}",
        rf"    quantizing: done {ELAPSED}",
        rf"  building onnx int8: done {ELAPSED}",
    ]
    lines = text.splitlines()
    assert len(lines) == len(expected), text
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_a_failing_step_says_failed_and_the_exception_passes_unchanged():
    stream = io.StringIO()
    progress = Progress(stream=stream)
    error = ValueError("bad tensor")
    with pytest.raises(ValueError) as caught:
        with progress.step("building"):
            with progress.step("exporting"):
                raise error
    assert caught.value is error
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(rf"    exporting: failed {ELAPSED}", lines[2])
    assert re.fullmatch(rf"  building: failed {ELAPSED}", lines[3])
    # the nesting is unwound: the next step is top level again
    with progress.step("next"):
        pass
    assert stream.getvalue().splitlines()[-1].startswith("  next: done")


def test_keyboard_interrupt_marks_the_step_failed_and_propagates():
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with Progress(stream=stream).step("measuring"):
            raise KeyboardInterrupt
    assert re.search(rf"measuring: failed {ELAPSED}", stream.getvalue())


def test_disabled_progress_and_silent_print_nothing(capsys):
    stream = io.StringIO()
    nested_run(Progress(enabled=False, stream=stream))
    nested_run(SILENT)
    assert stream.getvalue() == ""
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_default_stream_is_stderr_at_call_time(capsys):
    progress = Progress()  # created before the stream it writes on is known
    with progress.step("exporting"):
        pass
    err = capsys.readouterr().err
    assert err.startswith("  exporting ...\n") and "  exporting: done (" in err


def test_the_bmsdk_logger_receives_steps_and_info_even_when_silent(caplog):
    caplog.set_level(logging.DEBUG, logger="bmsdk")
    with pytest.raises(RuntimeError):
        with SILENT.step("building onnx int8"):
            SILENT.info("quantizing 12 nodes")
            with SILENT.step("inner"):
                raise RuntimeError("x")
    records = [r for r in caplog.records if r.name == "bmsdk"]
    messages = [(r.levelno, r.getMessage()) for r in records]
    assert messages[0] == (logging.DEBUG, "building onnx int8 ...")
    assert messages[1] == (logging.INFO, "quantizing 12 nodes")
    assert messages[2] == (logging.DEBUG, "inner ...")
    assert messages[3][0] == logging.INFO and re.fullmatch(rf"inner failed {ELAPSED}", messages[3][1])
    assert re.fullmatch(rf"building onnx int8 failed {ELAPSED}", messages[4][1])
    assert [r.bmsdk_progress for r in records] == ["start", "info", "start", "failed", "failed"]
    assert [getattr(r, "bmsdk_depth", None) for r in records] == [0, None, 1, 1, 0]
    assert records[3].bmsdk_elapsed >= 0


def test_a_library_user_who_configures_logging_sees_steps():
    """What `logging.basicConfig(level=INFO, format="%(name)s: %(message)s")` prints, on a handler of our own."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("bmsdk")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with SILENT.step("building onnx int8"):
        pass
    assert re.fullmatch(rf"bmsdk: building onnx int8 done {ELAPSED}\n", stream.getvalue())


def test_configure_logging_is_idempotent_and_leaves_root_alone():
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(0, stream=stream)
    configure_logging(0, stream=stream)
    configure_logging(1, stream=stream)
    bmsdk_logger = logging.getLogger("bmsdk")
    assert sum(isinstance(h, ConsoleHandler) for h in bmsdk_logger.handlers) == 1
    assert (list(root.handlers), root.level) == root_state
    assert bmsdk_logger.propagate is False


@pytest.mark.parametrize(
    "verbosity, shown, hidden",
    [
        (-1, ["warning: disk almost full"], ["plain info", "debug detail", "step one"]),
        (0, ["warning: disk almost full", "plain info", "step one: done"], ["debug detail"]),
        (
            1,
            [
                "warning [bmsdk.sub]: disk almost full",
                "plain info",
                "debug [bmsdk.sub]: debug detail",
                "step one: done",
            ],
            [],
        ),
    ],
)
def test_verbosity_levels(verbosity, shown, hidden):
    stream = io.StringIO()
    configure_logging(verbosity, stream=stream)
    sub = logging.getLogger("bmsdk.sub")
    sub.debug("debug detail")
    sub.info("plain info")
    sub.warning("disk almost full")
    with Progress(stream=stream).step("step one"):  # the CLI's enabled Progress, quiet under -q
        pass
    text = stream.getvalue()
    for piece in shown:
        assert piece in text, (piece, text)
    for piece in hidden:
        assert piece not in text, (piece, text)


def test_configured_handler_does_not_repeat_what_progress_draws():
    stream = io.StringIO()
    configure_logging(1, stream=stream)
    progress = Progress(stream=stream)
    progress.info("bmsdk convert")
    with progress.step("exporting"):
        logging.getLogger("bmsdk").warning("opset downgraded")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "bmsdk convert"
    assert lines[1] == "  exporting ..."
    assert lines[2] == "warning [bmsdk]: opset downgraded"
    assert lines[3].startswith("  exporting: done (")
    assert len(lines) == 4


def test_on_a_terminal_a_live_block_draws_the_tree_and_leaves_done_lines():
    stream = FakeTerminal()
    progress = Progress(stream=stream)
    with progress.step("building onnx int8"):
        with progress.step("exporting"):
            pass
    raw = stream.getvalue()
    assert "\x1b[" in raw  # it did animate/style: a real terminal renderer, not the plain one
    final = [line for line in ANSI.sub("", raw).replace("\r", "\n").splitlines() if line.strip()]
    assert "  building onnx int8 ..." in final  # the parent's header, written when its child finished
    done = [line for line in final if ": done" in line]
    assert re.fullmatch(rf"    exporting: done {ELAPSED}", done[0])
    assert re.fullmatch(rf"  building onnx int8: done {ELAPSED}", done[1])
    assert len(done) == 2
    # a leaf step leaves only its done line behind, not a "..." line
    assert "    exporting ..." not in final


def test_on_a_terminal_a_failed_step_is_marked_and_the_live_block_ends():
    stream = FakeTerminal()
    progress = Progress(stream=stream)
    with pytest.raises(OSError):
        with progress.step("writing"):
            raise OSError("disk full")
    text = ANSI.sub("", stream.getvalue())
    assert re.search(rf"  writing: failed {ELAPSED}", text)
    assert "\x1b[?25h" in stream.getvalue()  # cursor shown again: the live display was stopped
    stream.truncate(0), stream.seek(0)
    progress.info("after")
    assert ANSI.sub("", stream.getvalue()).strip() == "after"


def test_two_threads_stepping_at_once_do_not_crash_or_split_lines():
    stream = io.StringIO()
    progress = Progress(stream=stream)
    errors = []

    def work(name):
        try:
            for i in range(50):
                with progress.step(f"{name} step {i}"):
                    with progress.step(f"{name} inner {i}"):
                        progress.info(f"{name} info {i}")
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 * 50 * 5
    pattern = re.compile(
        rf"(  [ab] step \d+( \.\.\.|: done {ELAPSED})|    [ab] inner \d+( \.\.\.|: done {ELAPSED})|[ab] info \d+)"
    )
    assert all(pattern.fullmatch(line) for line in lines), [line for line in lines if not pattern.fullmatch(line)][:3]


def test_format_elapsed():
    assert format_elapsed(3.14) == "3.1s"
    assert format_elapsed(125) == "2m05s"


def test_importing_progress_stays_light():
    code = "import sys, bmsdk, bmsdk.progress; print('rich' in sys.modules, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False False", proc.stderr
