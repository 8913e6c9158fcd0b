"""One greedy float-fallback search for every target: which units of a quantized model go back to float so that it
meets a criterion.

A unit is whatever the target can keep float (a source layer, an op group, a node); the criterion is whatever the
caller measures on the rebuilt model (the task metric's drop on --eval data, or cosine on held-out rows).
`evaluate(float_units) -> (ok, score, outcome)` builds and measures one mix; the outcome (a manifest, a model) goes
back to the caller with the trial that shipped. The search walks one ranking, most sensitive unit first:

- "add": from all quantized, float units are added from the most sensitive, `step` at a time (at most `max_rounds`
  rounds), until the criterion holds. The accuracy-budget search over source layers (budget.py): every trial is a
  full build and validation, so there are few rounds.
- "return": from all float, units go back to quantized from the least sensitive, each kept quantized only if the
  criterion still holds. TFLite's op groups (targets/tflite/mixed.py): a trial re-quantizes the calibrated model.

TensorRT's text int8 does not search: `ffn_matmuls` (targets/tensorrt/build.py) is a fixed prior, the FFN matmuls
that a measurement on MiniLM showed must stay float, applied before any search would start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DIRECTIONS = ("add", "return")

Evaluate = Callable[[list[str]], tuple[bool, Any, Any]]  # float units -> (criterion holds, score, outcome)


@dataclass
class Trial:
    float_units: list[str]
    ok: bool
    score: Any = None  # what the criterion measured (a drop in points, a share of rows)
    outcome: Any = None  # what evaluate built, for the caller


@dataclass
class SearchResult:
    first: Trial  # every unit quantized
    final: Trial  # the trial that ships: the first that holds ("add"), the last kept ("return"), else the last tried
    trials: list[Trial] = field(default_factory=list)  # after `first`, in the order tried

    @property
    def met(self) -> bool:
        return self.final.ok

    @property
    def float_units(self) -> list[str]:
        return self.final.float_units

    @property
    def rounds(self) -> list[Trial]:
        return [self.first, *self.trials]


def trial(evaluate: Evaluate, float_units: list[str]) -> Trial:
    return Trial(list(float_units), *evaluate(list(float_units)))


def fallback_search(
    units: Sequence[str],
    ranked: Sequence[str] | Callable[[], Sequence[str]],
    evaluate: Evaluate,
    *,
    direction: str = "add",
    max_rounds: int | None = None,
    step: int = 1,
    first: Trial | None = None,
) -> SearchResult:
    """Search float units among `units` (their order is the order float sets are given in, for "return").

    `ranked`: the units from most to least sensitive, or a function giving them, called only if `first` (every unit
    quantized; evaluated here unless given) misses the criterion. `max_rounds` ("add") sets `step` so that the
    ranking is cut into at most that many groups.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown search direction {direction!r}: use one of {DIRECTIONS}")
    first = first or trial(evaluate, [])
    if first.ok:
        return SearchResult(first=first, final=first)
    order = list(ranked() if callable(ranked) else ranked)
    if direction == "add":
        return _add(first, order, evaluate, _step(len(order), max_rounds, step))
    return _return(first, list(units), order, evaluate)


def _step(count: int, max_rounds: int | None, step: int) -> int:
    return max(1, -(-count // max_rounds)) if max_rounds else max(1, step)


def _add(first: Trial, ranked: list[str], evaluate: Evaluate, step: int) -> SearchResult:
    result = SearchResult(first=first, final=first)
    for end in range(step, len(ranked) + step, step):
        result.final = trial(evaluate, ranked[:end])
        result.trials.append(result.final)
        if result.final.ok:
            break
    return result


def _return(first: Trial, units: list[str], ranked: list[str], evaluate: Evaluate) -> SearchResult:
    result = SearchResult(first=first, final=first)
    quantized: list[str] = []
    for unit in reversed(ranked):
        candidate = trial(evaluate, [u for u in units if u not in quantized and u != unit])
        result.trials.append(candidate)
        if candidate.ok:
            quantized.append(unit)
            result.final = candidate
    if not quantized:  # nothing could go back to quantized: every unit float
        result.final = trial(evaluate, units)
        result.trials.append(result.final)
    return result
