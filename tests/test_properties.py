"""Property tests on random well-formed expressions: printing round-trips, derivatives match finite differences."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import case, program, rich_case

import indexdiff as ix
from indexdiff.check import random_arrays, sizes_for

SETTINGS = settings(max_examples=320, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@SETTINGS
@given(case())
def test_printing_round_trips(text: str) -> None:
    e = ix.parse(text)
    printed = str(e)
    assert ix.parse(printed) == e, printed
    assert str(ix.parse(printed)) == printed  # printing is a fixed point


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.one_of(rich_case(), program()))
def test_rich_notation_and_programs_print_round_trip(text: str) -> None:
    e = ix.parse(text)
    printed = str(e)
    assert ix.parse(printed) == e, printed
    assert str(ix.parse(printed)) == printed


# ix.check's own differences are thorough (and slower): 160 cases here; tests/test_fuzz_differential.py checks many more
# derivatives through every route.
@settings(max_examples=160, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case(), st.data())
def test_first_and_second_derivatives_match_finite_differences(text: str, data: st.DataObject) -> None:
    e = ix.parse(text)
    names = sorted(e.variables)
    assume(names)
    value = ix.evaluate(e, random_arrays(e), dims=sizes_for(e))
    assume(np.all(np.isfinite(value)) and np.max(np.abs(value), initial=0) < 1e8)  # e.g. exp(exp(ΣA²)) overflows
    first = data.draw(st.sampled_from(names))
    second = data.draw(st.sampled_from(names))
    report = ix.check(e, first, second)
    assert report.ok, f"{text}\n{report}\n{ix.diff(e, first)}\n{ix.diff(e, first, second)}"
    for d in (ix.diff(e, first), ix.diff(e, first, second)):
        assert ix.parse(str(d)) == d, str(d)
