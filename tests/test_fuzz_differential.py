"""Differential fuzzer: random well-formed expressions and programs, every route against the reference evaluator.

Each case (from ``strategies.rich_case`` and ``strategies.program``) is printed and parsed back, evaluated with
``ix.evaluate`` (the reference) and with ``ix.compile`` (float64 and float32), the einsum code and the generated
Python module; its first and second derivatives by random variables go through the same routes and are compared
with central differences (see ``fuzz_routes.py``).

The default run is derandomized and bounded (400 expressions and 120 programs, about 30 s of CPU time), and the
cases the fuzzers found (minimized) run every time. A longer, randomized
run: ``INDEXDIFF_FUZZ=long pytest tests/test_fuzz_differential.py`` (``INDEXDIFF_FUZZ_EXAMPLES=N`` sets the
number of cases per test, 2000 by default in the long run).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fuzz_routes import check_expression, check_program, draw_wrt, fuzz_settings, used_inputs
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import program, rich_case

import indexdiff as ix


def _settings(examples: int) -> settings:
    return fuzz_settings(examples, 2000)


_wrt = draw_wrt


@_settings(400)
@given(rich_case(), st.data())
def test_expressions_agree_on_every_route(text: str, data: st.DataObject) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in exp(exp(...)): such cases are skipped
        check_expression(text, _wrt(data, ix.parse(text).variables))


@_settings(120)
@given(program(), st.data())
def test_programs_agree_on_every_route(text: str, data: st.DataObject) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_program(text, _wrt(data, used_inputs(ix.parse(text))))


#: Inputs from issue 7 and inputs the fuzzers found (minimized by hand), with the variables to differentiate by.
KNOWN = [
    ("sum_i(step(x_i) step(y_i))", ("x", "y")),
    ("exp(step(x_i))", ("x", "x")),
    ("y_i / step(x_i)", ("y", "x")),
    ("A_jl δ_ji^0", ("A", "A")),
    ("a δ_ij^0", ("a", "a")),
    ("sum_b(x_b) + sum_b(m δ_b)", ("m", "x")),
    ("(x_i x_i) / δ_ii", ("x", "x")),
    ("L = sum_b((m δ_b + x_b)^2)", ("m", "x")),
    ("(x_b - m δ_b)(x_b - m δ_b)", ("m", "x")),
    ("sum_i(1 + δ_ki) B_ki", ("B", "B")),
    ("sum_j(1 + δ_kj) B_ki", ("B", "B")),
    ("L = sum_bd(x_bd - sum_e(x_be))", ("x", "x")),
    ("a_a (A_ab + X_ac B_cd X_db) b_b", ("X", "X")),
    ("δ_i δ_ij x_j", ("x", "x")),
    ("f_ij = x_i^2 + y_j", ("x", "y")),
    ("B_ji * 0.1^-1", ("B", "B")),
    ("-(T_llk) * 1^-1", ("T", "T")),
    ("P_ij = exp(S_ij) / sum_k(exp(S_ik))", ("S", "S")),
    ("1 / (t^2)^0.5", ("t", "t")),  # a reciprocal of a power of a power
    ("c 2^-1", ("c", "c")),  # a number's power as a factor prints idempotently
    ("sum_r(δ_rs u_s)", ("u", "u")),  # einsum code for an index tied to a tensor by a delta
    ("t (t^2)^-1.5", ("t", "t")),  # like powers across a power of a power
    ("sum_m((u_m^0.5)^0.5)", ("u", "u")),  # like powers across a power of a power
    ("(t^-1)^0.5", ("t", "t")),  # like powers across a power of a power
    ("δ_im (δ_mi B_ij)", ("B", "B")),  # a zero derivative keeps the lengths of its indices
    ("(δ_pp) w_p", ("w", "w")),  # dims by the user's name of a trace's index
    ("-(δ_ij (δ_j δ_i δ_i))", ()),  # dims by the user's name of a trace's index
    ("F_i = sum_j(B_ij - B_im δ_j δ_m)", ("B", "B")),  # a derivative keeps a summed index's length
    ("sum_i(δ_ij u_j - a)", ("a", "u")),  # a derivative keeps a summed index's length
    ("F_j = (δ_pq A_jp) (δ_pq + a)", ("a", "A")),  # a derivative keeps a summed index's length
    ("sum_p(δ_pq (u_q - a))", ("a", "u")),  # a derivative keeps a summed index's length
    ("F = tanh(δ_pq (u_q - u_q - a))", ("a", "a")),  # a derivative keeps a summed index's length
    ("(-1) (A_jp T_jpi)", ("A", "T")),  # -1 times a parenthesized contraction round-trips
    ("F_i = (-1) (T_pij (A_pj / v_p))", ("v", "A")),  # -1 times a parenthesized contraction round-trips
    ("(δ_ii) / u_i", ("u", "u")),  # dims by printed name reach a derivative's renamed trace
    ("c * log(δ_i) * (δ_ii)", ("c", "c")),  # dims by printed name reach a derivative's renamed trace
]

KNOWN_PROGRAMS = [
    ("h_bi = tanh(W_ij x_bj); L = sum_bi(h_bi^2)", ("W", "x")),
    ("z_bj = W_jk x_bk; L = sum_b(log(sum_j(exp(z_bj))) - z_bj t_bj)", ("W", "W")),
    ("a1 = x; a2 = a1 a1 + a1; a3 = a2 a2 + a2", ("x", "x")),
    ("H_ij = A_ij; L = a", ("a", "a")),  # compiling a program with inputs its output does not use
    ("G_i = δ_i + c; L = c T_ii", ("c", "c")),  # a program module with a length only a delta gives
    ("h_i = relu(W_ij x_j); L = h_i h_i", ("W", "x")),
]


@pytest.mark.parametrize(("text", "wrt"), KNOWN)
def test_known_cases_agree_on_every_route(text: str, wrt: tuple[str, str] | tuple[()]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_expression(text, wrt)


@pytest.mark.parametrize(("text", "wrt"), KNOWN_PROGRAMS)
def test_known_programs_agree_on_every_route(text: str, wrt: tuple[str, str]) -> None:
    check_program(text, wrt)


def test_the_fuzzer_catches_a_wrong_derivative() -> None:
    """The checks are not vacuous: a derivative off by a factor fails against central differences."""
    from fuzz_routes import RouteError, check_against_differences

    e = ix.parse("sum_i(u_i^3)")
    arrays = {"u": np.array([0.5, 1.0, 1.5])}
    wrong = 2 * arrays["u"] ** 2  # the right one is 3 u^2
    try:
        check_against_differences("sum_i(u_i^3)", "d/du", wrong, lambda a: ix.evaluate(e, a), arrays, "u")
    except RouteError:
        return
    raise AssertionError("a wrong derivative passed")
