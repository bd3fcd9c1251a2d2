"""ix.compile: agrees with the reference evaluator, shares work, keeps dtype, validates its inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import case

import indexdiff as ix
from indexdiff.check import random_arrays, sizes_for
from indexdiff.errors import ShapeError


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case(), st.data())
def test_compiled_equals_evaluate_for_random_expressions_and_derivatives(text, data):
    e = ix.parse(text)
    names = sorted(e.variables)
    assume(names)
    wrt = data.draw(st.sampled_from(names))
    exprs = (e, ix.diff(e, wrt), ix.diff(e, wrt, wrt))
    arrays = random_arrays(e)
    sizes = sizes_for(e)
    expected = [ix.evaluate(x, arrays, sizes) for x in exprs]
    assume(all(np.all(np.isfinite(v)) for v in expected))
    assume(all(set(x.free) <= {i for t in _tensors(x) for i in t.indices} | set(x.origins) for x in exprs))
    got = ix.compile(*exprs)(**arrays)
    for g, want in zip(got, expected):
        assert g.shape == want.shape
        assert np.allclose(g, want, rtol=1e-9, atol=1e-12), text


def _tensors(e):
    from indexdiff.names import tensors

    return list(tensors(e.node))


def test_value_gradient_hessian_together(rng):
    L = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    f = ix.compile(L, ix.diff(L, "w"), ix.diff(L, "w", "w"))
    X, y, w = rng.normal(size=(40, 5)), np.sign(rng.normal(size=40)), rng.normal(size=5)
    value, grad, hess = f(X=X, y=y, w=w)
    z = y * (X @ w)
    s = 1 / (1 + np.exp(-z))
    assert np.isclose(value, np.logaddexp(0, -z).sum())
    assert np.allclose(grad, -X.T @ (y * (1 - s)))
    assert np.allclose(hess, (X.T * (s * (1 - s))) @ X)


def test_shared_subexpressions_are_computed_once(rng):
    L = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    exprs = (L, ix.diff(L, "w"), ix.diff(L, "w", "w"))
    together = ix.compile(*exprs)
    X, y, w = rng.normal(size=(10, 3)), np.sign(rng.normal(size=10)), rng.normal(size=3)
    together(X=X, y=y, w=w)
    separately = [ix.compile(e) for e in exprs]
    for f in separately:
        f(X=X, y=y, w=w)
    steps = len(next(iter(together._plans.values())).steps)
    assert steps < sum(len(next(iter(f._plans.values())).steps) for f in separately)


def test_plans_are_built_once_per_shapes(rng):
    e = ix.parse("A_ij x_j")
    f = ix.compile(e)
    for _ in range(3):
        f(A=rng.normal(size=(3, 4)), x=rng.normal(size=4))
    f(A=rng.normal(size=(2, 4)), x=rng.normal(size=4))
    assert len(f._plans) == 2


def test_float32_in_float32_out(rng):
    e = ix.parse("x_i A_ij x_j")
    f = ix.compile(e, ix.diff(e, "x"), ix.diff(e, "x", "x"))
    out = f(A=rng.normal(size=(3, 3)).astype(np.float32), x=rng.normal(size=3).astype(np.float32))
    assert all(o.dtype == np.float32 for o in out)


def test_diagonal_and_broadcast_outputs(rng):
    z = ix.parse("z_bi = W_ij x_bj + c_i")
    W, x, c = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=3)
    for d in (ix.diff(z, "c"), ix.diff(z, "W"), ix.diff(ix.parse("h_i = x_i^3"), "x", "x")):
        arrays = {n: a for n, a in {"W": W, "x": x, "c": c}.items() if n in d.variables}
        if "x" in d.variables and d.variables["x"] == 1:
            arrays = {"x": rng.normal(size=4)}
        assert np.allclose(ix.compile(d)(**arrays), ix.evaluate(d, arrays))


@pytest.mark.parametrize("z", [1000.0, -1000.0])
def test_stable_functions(z):
    e = ix.parse("log(1 + exp(x)) + sigmoid(x) + softplus(-x)")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = ix.compile(e)(x=np.float64(z))
    assert np.isfinite(value)


def test_input_validation():
    f = ix.compile(ix.parse("A_ij x_j"))
    with pytest.raises(ShapeError, match="no array given for 'x'"):
        f(A=np.ones((2, 3)))
    with pytest.raises(ShapeError, match="unexpected array 'y'"):
        f(A=np.ones((2, 3)), x=np.ones(3), y=np.ones(3))
    with pytest.raises(ShapeError, match="'x' has 1 index but the array has 2 axes"):
        f(A=np.ones((2, 3)), x=np.ones((3, 1)))
    with pytest.raises(ShapeError, match="index 'j' has size"):
        f(A=np.ones((2, 3)), x=np.ones(4))
    with pytest.raises(ix.IndexDiffError, match="nothing to compile"):
        ix.compile()


@pytest.mark.parametrize("z", [1000.0, -1000.0])
def test_log_sum_exp_is_stable(z):
    e = ix.parse("L = sum_b(log(sum_j(exp(z_bj))) - z_bj t_bj)")
    logits, targets = np.array([[z, 0.0, 1.0]]), np.array([[0.0, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        compiled = ix.compile(e)(z=logits, t=targets)
        reference = ix.evaluate(e, {"z": logits, "t": targets})
    expected = max(z, 1.0) + np.log1p(np.exp(-abs(z - 1.0)) + np.exp(-max(z, 1.0)))
    assert np.isclose(compiled, expected) and np.isclose(reference, expected)


def test_integer_inputs_compute_in_float():
    f = ix.compile(ix.parse("x_i^-1 + 1 / y_i"))
    out = f(x=np.array([1, 2]), y=[4, 8])
    assert out.dtype == np.float64 and np.allclose(out, [1.25, 0.625])


def test_shared_subexpressions_respect_index_lengths():
    q = ix.parse("P_ij = A_ij + δ_ij\nQ_ij = B_ij + δ_ij\nL = sum_ij(P_ij) + sum_ij(Q_ij)")
    arrays = {"A": np.zeros((1, 1)), "B": np.zeros((3, 3))}
    assert ix.compile(q)(**arrays) == ix.evaluate(q, arrays) == 4.0
    _, second = ix.compile(ix.parse("A_ij + δ_ij"), ix.parse("B_ij + δ_ij"))(**arrays)
    assert np.array_equal(second, np.eye(3))
    p = ix.parse("g_i = tanh(u_i)\nk_i = tanh(v_i)\nL = sum_i(g_i) + sum_i(k_i)")
    _, du, dv = ix.compile(ix.grad(p, wrt=["u", "v"]))(u=np.array([0.3]), v=np.array([0.1, 0.2, 0.3]))
    assert du.shape == (1,) and dv.shape == (3,)


def test_lengths_known_only_before_simplification():
    assert ix.compile(ix.parse("sum_ij(A_ij + δ_ij)"))(A=np.ones((2, 2))) == 6.0
    assert np.allclose(ix.compile(ix.parse("F_i = sum_p(δ_ip - u_p)"))(u=np.ones(3)), [-2, -2, -2])


def test_constants_keep_dtype_and_library():
    assert ix.compile(ix.parse("u_i exp(1)"))(u=np.ones(3, np.float32)).dtype == np.float32
    with pytest.raises(ShapeError, match="not numeric"):
        ix.compile(ix.parse("c x_i"))(c=None, x=np.ones(2))


def test_a_plan_lets_go_of_each_value_after_its_last_use():
    # The first call records which values each step reads; later calls drop an intermediate as soon as no later
    # step needs it (as hand-written code does), with the same results.
    e = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    f = ix.compile(e, ix.diff(e, "w"), ix.diff(e, "w", "w"))
    rng = np.random.default_rng(3)
    arrays = {"X": rng.normal(size=(40, 4)), "y": rng.choice([-1.0, 1.0], 40), "w": rng.normal(size=4)}
    first = f(**arrays)
    (plan,) = f._plans.values()  # a steps.Plan
    assert plan.release is not None and any(plan.release)
    for a, b in zip(first, f(**arrays)):
        np.testing.assert_array_equal(a, b)
    for got, x in zip(f(**arrays), [e, ix.diff(e, "w"), ix.diff(e, "w", "w")]):
        np.testing.assert_allclose(got, ix.evaluate(x, arrays))


def test_negated_terms_are_subtracted():
    # 1 - s runs as one subtraction (not a negation, then an addition), with the same values and dtype.
    for dtype in (np.float32, np.float64):
        a = np.linspace(-3, 3, 7).astype(dtype)
        f = ix.compile(ix.parse("f_i = sigmoid(a_i) (1 - sigmoid(a_i)) - a_i - 2 a_i"))
        s = 1 / (1 + np.exp(-a.astype(np.float64)))
        got = f(a=a)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, s * (1 - s) - 3 * a, rtol=1e-6 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(ix.compile(ix.parse("f_i = -a_i + 1"))(a=a), 1 - a)
