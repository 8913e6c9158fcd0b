"""The step-graph adapter over stateful CoreML programs: the mask it builds and what it refuses (the end-to-end
checks against transformers are in tests/converters/test_coreml_generation.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bmsdk.errors import InputError
from bmsdk.runtimes.coreml_state import StatefulSteps, step_mask


def test_step_mask_sees_the_cache_and_the_real_new_tokens_causally():
    mask = step_mask(2, np.array([True, True, False]))
    assert mask.shape == (1, 1, 3, 5)
    np.testing.assert_array_equal(mask[0, 0], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(step_mask(0, np.array([True]))[0, 0], [[1]])


class _Recorder:
    """A stand-in program: records the feeds and state writes, returns presents of the new tokens' width."""

    def __init__(self):
        self.runs, self.writes = [], []

    def make_state(self):
        return {}

    def run(self, feeds, state):
        self.runs.append(feeds)
        width = feeds["input_ids"].shape[1]
        keys = np.full((1, 1, width, 2), float(len(self.runs)), np.float32)
        return {"logits": np.zeros((1, width, 3), np.float32), "present_key_0": keys, "present_value_0": keys}

    def write_state(self, state, name, value):
        self.writes.append((name, value))


def _feeds(past_valid: int, width: int, window: int = 4, past=None):
    mask = np.zeros((1, window + width), np.int32)
    mask[0, :past_valid] = 1
    mask[0, window:] = 1
    past = np.zeros((1, 1, window, 2), np.float32) if past is None else past
    return {
        "input_ids": np.ones((1, width), np.int32),
        "position_ids": np.arange(past_valid, past_valid + width, dtype=np.int32)[None],
        "attention_mask": mask,
        "past_key_0": past,
        "past_value_0": past,
    }


def test_appending_steps_copy_nothing_in_and_a_changed_cache_is_loaded():
    program = _Recorder()
    steps = StatefulSteps(program, {"key_cache_0": [1, 1, 4, 2], "value_cache_0": [1, 1, 4, 2]})
    first = steps(_feeds(0, 2))
    past = np.zeros((1, 1, 4, 2), np.float32)
    past[:, :, :2] = first["present_key_0"]  # what the Generator stores
    second = steps(_feeds(2, 1, past=past))
    assert not program.writes and program.runs[-1]["attention_mask"].shape == (1, 1, 1, 3)
    other = past.copy()
    other[:, :, 2] = second["present_key_0"][:, :, 0] + 1  # three valid slots, but not what the states hold
    steps(_feeds(3, 1, past=other))
    assert {name for name, _ in program.writes} == {"key_cache_0", "value_cache_0"}  # loaded first
    np.testing.assert_array_equal(program.writes[0][1][:, :, :3], other[:, :, :3])
    with pytest.raises(InputError, match="do not fit"):
        steps(_feeds(3, 2))
