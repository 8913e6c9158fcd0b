"""The text-generation step-graph contract (bmsdk/tasks/generation.py) over a stateful CoreML program, whose KV cache
lives in states (converters/targets/coreml/stateful.py), for both CoreML backends.

The Generator keeps passing its cache (`past_*`) and storing the presents; the program already holds that cache in
its states, so the past feeds are only read when the states do not hold them: a new conversation starts from an
empty cache (nothing to load), each step appends its tokens, and anything else (a sliding window that dropped the
oldest slots, another conversation, a batch of unrelated rows) loads the valid slots of the feeds into the states
first. The states are trusted when the feeds' valid slots end where the states' do and agree with the first and
last keys the states were given (the presents this step returned, which the Generator stored).

The program takes one row (the states have batch 1): a batch runs row by row. Keys and values in the states are
fp16 (CoreML states are fp16 only).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np

from bmsdk.errors import InputError


class StatefulProgram(Protocol):
    def make_state(self) -> Any: ...

    def run(self, feeds: dict[str, np.ndarray], state: Any) -> dict[str, np.ndarray]: ...

    def write_state(self, state: Any, name: str, value: np.ndarray) -> None: ...


class StatefulSteps:
    """`__call__(feeds)`: the step graph's outputs for the contract's feeds, the cache kept in the program's states."""

    def __init__(self, program: StatefulProgram, states: dict[str, list[int]]):
        self.program = program
        self.layers = len(states) // 2
        self.window = int(next(iter(states.values()))[2])
        self.state = program.make_state()
        self.lock = threading.Lock()  # one state: one step at a time
        self.held = 0  # valid slots the states hold (slots 0 .. held-1)
        self.marks: tuple[np.ndarray, np.ndarray] | None = None  # layer 0's key at slot 0 and slot held-1

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.lock:
            rows = [self._row(feeds, r) for r in range(len(feeds["input_ids"]))]
        return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}

    def _row(self, feeds: dict[str, np.ndarray], r: int) -> dict[str, np.ndarray]:
        width = feeds["input_ids"].shape[1]
        mask = feeds["attention_mask"][r]
        valid = np.flatnonzero(mask[: self.window])
        new = mask[self.window : self.window + width].astype(bool)
        n = int(valid.size)
        if n + width > self.window:
            raise InputError(
                f"{n} cached and {width} new tokens do not fit the {self.window} slots of the KV cache",
                "generate fewer tokens, or pass cache='slide'",
            )
        if n and not self._holds(feeds, r, valid):
            self._load(feeds, r, valid)
        outputs = self.program.run(
            {
                "input_ids": feeds["input_ids"][r : r + 1],
                "position_ids": feeds["position_ids"][r : r + 1],
                "attention_mask": step_mask(n, new),
            },
            self.state,
        )
        self._appended(outputs, n, int(new.sum()))
        return outputs

    def _holds(self, feeds, r: int, valid: np.ndarray) -> bool:
        n = valid.size
        if n != self.held or valid[-1] != n - 1 or self.marks is None:
            return False
        first, last = self.marks
        keys = feeds["past_key_0"][r]
        return np.array_equal(keys[:, 0], first) and np.array_equal(keys[:, n - 1], last)

    def _load(self, feeds, r: int, valid: np.ndarray) -> None:
        """The feeds' valid slots into the states' slots 0 .. n-1 (attention does not depend on where they were)."""
        for i in range(self.layers):
            for kind in ("key", "value"):
                past = feeds[f"past_{kind}_{i}"][r : r + 1]
                value = np.zeros((1, past.shape[1], self.window, past.shape[3]), np.float32)
                value[:, :, : valid.size] = past[:, :, valid]
                self.program.write_state(self.state, f"{kind}_cache_{i}", value)
        keys = feeds["past_key_0"][r]
        self.held, self.marks = valid.size, (keys[:, valid[0]].copy(), keys[:, valid[-1]].copy())

    def _appended(self, outputs: dict[str, np.ndarray], n: int, real: int) -> None:
        """After a step: the states hold n + real valid slots (padding past the real tokens is written, not used)."""
        if real == 0:
            return
        keys = outputs["present_key_0"][0]
        first = keys[:, 0].copy() if n == 0 else self.marks[0]
        self.held, self.marks = n + real, (first, keys[:, real - 1].copy())


def step_mask(n: int, new: np.ndarray) -> np.ndarray:
    """[1, 1, T, n+T] float: each new token sees the n cached slots, and the real new tokens up to itself."""
    width = new.size
    mask = np.ones((1, 1, width, n + width), np.float32)
    mask[0, 0, :, n:] = np.tril(np.ones((width, width), np.float32)) * new[None, :]
    return mask
