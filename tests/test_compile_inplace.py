"""Compiled plans write element-wise results into intermediates no later step reads (indexdiff/inplace.py).

A plan's first call records which values each step reads last and runs without writing in place; later calls
write in place. So every later call must give the first call's numbers exactly, leave the caller's arrays and
earlier results untouched, and never write into an array something else holds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fuzz_routes import Case, fuzz_settings
from hypothesis import given
from strategies import program, rich_case

import indexdiff as ix
from indexdiff import inplace
from indexdiff.check import random_arrays, sizes_for
from indexdiff.inplace import ENABLED, writable


@pytest.fixture(autouse=True)
def _every_size_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small results write in place too here (by default only large ones do), so that small data test it."""
    monkeypatch.setattr(inplace, "SMALLEST", 0)


MLP = """
z1_bi = W1_ij x_bj + b1_i
h1_bi = relu(z1_bi)
z2_bi = W2_ij h1_bj + b2_i
h2_bi = sigmoid(z2_bi)
L = sum_bi((h2_bi - y_bi)^2)
"""


def _mlp_arrays(dtype: type = np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"W1": (6, 5), "b1": (6,), "W2": (3, 6), "b2": (3,), "x": (4, 5), "y": (4, 3)}
    return {n: rng.normal(size=s).astype(dtype) for n, s in shapes.items()}


def _mlp_by_hand(W1, b1, W2, b2, x, y):  # noqa: N803 - the network's names
    z1 = x @ W1.T + b1
    h1 = np.maximum(z1, 0)
    h2 = 1 / (1 + np.exp(-(h1 @ W2.T + b2)))
    dz2 = 2 * (h2 - y) * h2 * (1 - h2)
    dz1 = (dz2 @ W2) * (z1 > 0)
    return np.sum((h2 - y) ** 2), dz1.T @ x, dz1.sum(0), dz2.T @ h1, dz2.sum(0)


def _calls_agree(f, arrays: dict[str, np.ndarray], times: int = 3) -> list:
    """Call ``f`` ``times`` times; every call gives the first's numbers, and no call changes the arrays or an
    earlier call's results. Returns the first call's results."""
    before = {n: a.copy() for n, a in arrays.items()}
    results = []
    for _ in range(times):
        got = f(**arrays)
        got = list(got) if isinstance(got, tuple) else [got]
        for (n, a), b in zip(arrays.items(), before.values()):
            assert np.array_equal(a, b, equal_nan=True), f"the call changed the input {n}"
        for earlier, kept in results:
            for r, c in zip(earlier, kept):
                assert np.array_equal(r, c, equal_nan=True), "a later call changed an earlier result"
        results.append((got, [np.array(r, copy=True) for r in got]))
    first = results[0][1]
    for got, _ in results[1:]:
        for a, b in zip(got, first):
            assert np.asarray(a).dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return first


def _plan_writes_in_place(f) -> int:
    """How many steps of ``f``'s plans write into an operand (the variants inplace.py makes are named into)."""
    return sum(step.__name__ == "into" for plan in f._plans.values() for step in plan.steps)


@pytest.mark.skipif(not ENABLED, reason="this interpreter does not count references as CPython does")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_gradient_program_writes_in_place_and_agrees_with_numpy(dtype: type) -> None:
    arrays = _mlp_arrays(dtype)
    f = ix.compile(ix.grad(ix.parse(MLP), wrt=["W1", "b1", "W2", "b2"]))
    first = _calls_agree(f, arrays)
    # The bias adds, relu, the loss's square and the relu backward's product (a mask) write in place.
    assert _plan_writes_in_place(f) >= 4
    for got, want in zip(first, _mlp_by_hand(**arrays)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_the_callers_arrays_are_never_written() -> None:
    # Every value here is read last by an element-wise step: the inputs themselves must be left alone, and so
    # must a transposed view of one and the same array passed under two names.
    f = ix.compile(ix.parse("exp(x_i) + relu(x_i) y_i"), ix.parse("x_i x_i - A_ji B_ij"))
    x, y = np.linspace(-1, 1, 4), np.linspace(2, 3, 4)
    A = np.arange(16.0).reshape(4, 4)
    _calls_agree(f, {"x": x, "y": y, "A": A, "B": A})
    _calls_agree(f, {"x": x, "y": x, "A": A.T, "B": A})


def test_a_result_that_later_statements_read_is_not_overwritten() -> None:
    # s is an output and read by t: writing t into s would change the returned s.
    p = ix.parse("s_i = x_i + y_i; t_i = s_i s_i; u_i = relu(t_i) + s_i")
    f = ix.compile(ix.Program(p.statements, ("s", "t", "u")))
    x, y = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.5, -4.0])
    s, t, u = _calls_agree(f, {"x": x, "y": y})
    np.testing.assert_array_equal(s, x + y)
    np.testing.assert_array_equal(t, (x + y) ** 2)
    np.testing.assert_array_equal(u, np.maximum((x + y) ** 2, 0) + x + y)


def test_mixed_dtypes_are_not_cast_down() -> None:
    # float32 x with a float64 y: a float32 intermediate must not receive a float64 sum.
    f = ix.compile(ix.parse("f_i = (x_i x_i + y_i) step(x_i) exp(x_i)"))
    x, y = np.array([0.1, -0.2, 0.3], dtype=np.float32), np.array([1e-9, 2.0, 3.0])
    (got,) = _calls_agree(f, {"x": x, "y": y})
    assert got.dtype == np.float64
    want = (x.astype(np.float64) ** 2 + y) * (x > 0) * np.exp(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_writable_sees_every_other_holder() -> None:
    v = [np.ones(3)]
    assert writable(v, 0) == ENABLED
    view = v[0][1:]
    assert not writable(v, 0)  # a view holds the array
    del view
    v.append(v[0])
    assert not writable(v, 0) and not writable(v, 1)  # two slots hold it
    v = [np.ones(3)[1:], np.float64(2.0), [1.0], np.ones(3)]
    v[3].flags.writeable = False
    assert not any(writable(v, k) for k in range(4))  # a view, a scalar, a list, a read-only array


@fuzz_settings(150, 1000)
@given(rich_case())
def test_random_expressions_and_derivatives_give_the_same_numbers_every_call(text: str) -> None:
    e = ix.parse(text)
    exprs = [e, *(ix.diff(e, v) for v in list(e.variables)[:1])]
    dims = {i: 2 + n % 2 for i, n in sizes_for(e).items()}
    arrays = random_arrays(e, dict.fromkeys(dims, 3))
    case = Case(arrays, 3)
    f = ix.compile(*exprs, dims={k: n for x in exprs for k, n in case.dims(x).items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _calls_agree(f, {n: arrays[n] for n in f.inputs})


@fuzz_settings(60, 500)
@given(program())
def test_random_programs_give_the_same_numbers_every_call(text: str) -> None:
    p = ix.parse(text)
    rng = np.random.default_rng(0)
    arrays = {n: rng.uniform(0.5, 1.5, size=(3,) * r) for n, r in sorted(p.inputs.items())}
    f = ix.compile(p, dims=Case(arrays, 3).dims(p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _calls_agree(f, {n: arrays[n] for n in f.inputs})


def test_an_intermediate_that_is_also_a_returned_statement_is_not_overwritten() -> None:
    # t's product reads x_i + y_i, computed once for s: the very array s returns, which t must not write into.
    p = ix.parse("s_i = x_i + y_i; t_i = (x_i + y_i) z_i")
    f = ix.compile(ix.Program(p.statements, ("s", "t")))
    x, y, z = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.5, -4.0]), np.array([2.0, 3.0, 4.0])
    s, t = _calls_agree(f, {"x": x, "y": y, "z": z})
    np.testing.assert_array_equal(s, x + y)
    np.testing.assert_array_equal(t, (x + y) * z)
