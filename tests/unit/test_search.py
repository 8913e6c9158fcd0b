"""The float-fallback search alone, with a criterion of its own: which units float make the score fit."""

from __future__ import annotations

import pytest

from bmsdk.converters.search import Trial, fallback_search

ERROR = {"a": 5.0, "b": 3.0, "c": 1.0, "d": 0.5, "e": 0.1}  # the error each unit adds when quantized


def criterion(limit: float, calls: list):
    def evaluate(float_units):
        calls.append(list(float_units))
        error = sum(e for u, e in ERROR.items() if u not in float_units)
        return error <= limit, error, f"model({','.join(float_units)})"

    return evaluate


RANKED = sorted(ERROR, key=lambda u: -ERROR[u])  # most sensitive first


def test_all_quantized_fits_so_nothing_is_ranked_or_rebuilt():
    calls = []
    result = fallback_search(list(ERROR), lambda: pytest.fail("ranked"), criterion(100, calls))
    assert result.met and result.float_units == [] and result.trials == [] and calls == [[]]


def test_add_grows_the_float_set_from_the_most_sensitive_until_it_fits():
    calls = []
    result = fallback_search(list(ERROR), RANKED, criterion(2.0, calls))
    assert calls == [[], ["a"], ["a", "b"]]
    assert result.met and result.float_units == ["a", "b"] and result.final.outcome == "model(a,b)"
    assert [t.score for t in result.rounds] == pytest.approx([9.6, 4.6, 1.6])


def test_add_in_at_most_max_rounds_groups():
    calls = []
    result = fallback_search(list(ERROR), RANKED, criterion(0.0, calls), max_rounds=2)
    assert calls[1:] == [["a", "b", "c"], ["a", "b", "c", "d", "e"]]  # ceil(5 / 2) = 3 per round
    assert result.met and len(result.trials) == 2


def test_add_that_never_fits_ships_the_last_trial_and_says_so():
    result = fallback_search(list(ERROR), RANKED, criterion(-1.0, []), step=2)
    assert not result.met and result.float_units == list(RANKED) and len(result.trials) == 3


def test_a_given_first_trial_is_not_evaluated_again():
    calls = []
    first = Trial([], False, 9.6, "built elsewhere")
    result = fallback_search(list(ERROR), RANKED, criterion(5.0, calls), first=first)
    assert calls == [["a"]] and result.first is first and result.float_units == ["a"]


def test_return_hands_units_back_from_the_least_sensitive_while_the_criterion_holds():
    calls = []
    units = ["e", "d", "c", "b", "a"]  # the order float sets are given in
    result = fallback_search(units, RANKED, criterion(1.2, calls), direction="return")
    # from all float: e back (0.1 fits), d back (0.6), c back (1.6 misses), b back (3.6 misses), a (5.6 misses)
    assert calls[1:] == [["d", "c", "b", "a"], ["c", "b", "a"], ["b", "a"], ["c", "a"], ["c", "b"]]
    assert result.met and result.float_units == ["c", "b", "a"] and result.final.outcome == "model(c,b,a)"


def test_return_with_nothing_handed_back_ends_with_every_unit_float():
    calls = []
    result = fallback_search(list(ERROR), RANKED, criterion(-1.0, calls), direction="return")
    assert calls[-1] == list(ERROR) and result.float_units == list(ERROR) and not result.met


def test_an_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction"):
        fallback_search(["a"], ["a"], criterion(-1.0, []), direction="sideways")
