"""Powers of powers keep both exponents, and summed indices keep their lengths, through simplification."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

CASES = [
    ("t (t^2)^-1.5", "t"),
    ("1 / (t^2)^0.5", "t"),
    ("t / (t^2)^1.5", "t"),
    ("(t^2)^0.5", "t,t"),
    ("(t^2)^-1.5", "t,t"),
    ("(t^-1)^0.5", "t,t"),
    ("((1 + t)^0.5)^0.5", "t,t"),
    ("sum_m((u_m^0.5)^0.5)", "u"),
    ("sum_m((u_m^0.5)^0.5)", "u,u"),
]


@pytest.mark.parametrize(("text", "wrt"), CASES)
def test_powers_of_powers_match_finite_differences(text: str, wrt: str) -> None:
    e = ix.parse(text)
    report = ix.check(e, *wrt.split(","), arrays={n: np.full((3,) * r, 0.7) for n, r in e.variables.items()})
    assert report.ok, f"{text} d/d{wrt}: {ix.diff(e, *wrt.split(','))}\n{report}"


def test_power_of_power_times_its_base_keeps_the_outer_exponent() -> None:
    d = ix.diff(ix.parse("t (t^2)^-1.5"), "t")
    # d/dt t (t²)^-3/2 = -2 t^-3 for t > 0
    assert float(ix.evaluate(d, {"t": np.array(0.7)})) == pytest.approx(-2 / 0.7**3)


LOST_LENGTHS = [
    ("sum_p(δ_pq (u_q - a))", "a", -3.0),  # a delta between two summed indices outlived u_q^0
    ("sum_i(δ_ij u_j - a)", "a", -3.0),
    ("F = tanh(δ_pq (u_q - u_q - a))", "a", -3 * (1 - np.tanh(-0.3) ** 2)),
]


@pytest.mark.parametrize(("text", "wrt", "expected"), LOST_LENGTHS)
def test_a_summed_index_keeps_its_length_when_its_delta_is_contracted(text: str, wrt: str, expected: float) -> None:
    e = ix.parse(text)
    arrays = {"u": np.arange(1.0, 4.0), "a": np.array(0.3)}
    d = ix.diff(e, wrt)
    assert float(ix.evaluate(d, {n: arrays[n] for n in e.variables})) == pytest.approx(expected)
    assert float(ix.compile(d)(**{n: arrays[n] for n in ix.compile(d).inputs})) == pytest.approx(expected)
    assert ix.parse(str(d)) == d
