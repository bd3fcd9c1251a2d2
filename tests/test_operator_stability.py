"""Stability of the operators on ix.evaluate and ix.compile against independent references: softmax and
log-sum-exp at logits ±1e4 (float64) and ±100 (float32), with their gradients; logdet of a 500×500 SPD matrix of
condition number 1e8 and its gradient; max/min ties; the naive spellings at large logits; empty and one-element
axes; nan and ±inf. The numpy references are written here (shift by the row maximum); the JAX tests skip without
jax and have these numpy counterparts."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

ROUTES = ("evaluate", "compile")


def run(e: ix.Expr, arrays: dict[str, np.ndarray], route: str) -> np.ndarray:
    arrays = {name: a for name, a in arrays.items() if name in e.variables}
    with np.errstate(all="ignore"):  # nan/inf inputs: values are compared, warnings are numpy's business
        return np.asarray(ix.evaluate(e, arrays) if route == "evaluate" else ix.compile(e)(**arrays))


def softmax_ref(z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def lse_ref(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1)
    with np.errstate(invalid="ignore"):
        return m + np.log(np.exp(z - m[:, None]).sum(axis=1))


def logits(scale: float, dtype: type) -> np.ndarray:
    """Rows of logits of size ``scale``: spread out, near-ties at the top, all equal, mixed signs."""
    rng = np.random.default_rng(8)
    z = rng.normal(size=(5, 7))
    z[1] = [1.0, 1.0 - 1e-3 / scale * 10, -1.0, 0.5, 1.0, -0.2, 0.3]  # three-way tie, one near it
    z[2] = 1.0  # all equal
    z[3] = -np.abs(z[3])  # all negative
    return (z * scale).astype(dtype)


CASES = [(1e4, np.float64, 1e-12), (100.0, np.float32, 2e-6)]


@pytest.mark.parametrize(("scale", "dtype", "tol"), CASES)
@pytest.mark.parametrize("route", ROUTES)
def test_softmax_and_logsumexp_values_at_large_logits(scale: float, dtype: type, tol: float, route: str) -> None:
    z = logits(scale, dtype)
    exact = z.astype(np.float64)  # the reference is the stable formula at the same (rounded) inputs
    for text, want in (("softmax_j(z_ij)", softmax_ref(exact)), ("logsumexp_j(z_ij)", lse_ref(exact))):
        got = run(ix.parse(text), {"z": z}, route)
        assert got.dtype == dtype
        assert np.all(np.isfinite(got)), text
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=text)


@pytest.mark.parametrize(("scale", "dtype", "tol"), CASES)
@pytest.mark.parametrize("route", ROUTES)
def test_softmax_and_logsumexp_gradients_at_large_logits(scale: float, dtype: type, tol: float, route: str) -> None:
    """∂/∂z of Σ logsumexp_j(z) c (= c softmax) and of Σ softmax_j(z) W (= s ∘ (W − Σ_j W s))."""
    z = logits(scale, dtype)
    rng = np.random.default_rng(1)
    W = rng.normal(size=z.shape).astype(dtype)
    c = rng.normal(size=z.shape[0]).astype(dtype)
    s = softmax_ref(z.astype(np.float64))
    cases = (
        ("L = sum_i(c_i logsumexp_j(z_ij))", c[:, None] * s),
        ("L = sum_ij(softmax_j(z_ij) W_ij)", s * (W - np.sum(W * s, axis=1, keepdims=True))),
    )
    for text, want in cases:
        grad = ix.diff(ix.parse(text), "z")
        got = run(grad, {"z": z, "W": W, "c": c}, route)
        assert got.dtype == dtype
        assert np.all(np.isfinite(got)), (text, str(grad))
        np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10, err_msg=f"{text}: {grad}")


@pytest.mark.parametrize(("scale", "dtype", "tol"), CASES)
def test_the_reverse_mode_softmax_is_stable_and_reuses_the_forward_value(scale: float, dtype: type, tol: float) -> None:
    program = ix.parse("P_ij = softmax_j(z_ij)\nL = sum_ij(P_ij W_ij)")
    backward = ix.grad(program, wrt=["z"])
    derived = "\n".join(str(s) for s in backward.statements[len(program.statements) :])
    assert "exp" not in derived and "softmax" not in derived, derived
    z = logits(scale, dtype)
    W = np.random.default_rng(2).normal(size=z.shape).astype(dtype)
    s = softmax_ref(z.astype(np.float64))
    _, dz = ix.compile(backward)(z=z, W=W)
    assert dz.dtype == dtype
    np.testing.assert_allclose(dz, s * (W - np.sum(W * s, axis=1, keepdims=True)), rtol=tol * 10, atol=tol * 10)


def test_softmax_and_logsumexp_match_jax() -> None:
    """jax.nn.softmax and jax.nn.logsumexp under jax.value_and_grad, in float64 at ±1e4 and float32 at ±100."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    for scale, dtype, tol in CASES:
        z = logits(scale, dtype)
        W = np.random.default_rng(3).normal(size=z.shape).astype(dtype)
        for text, fn in (
            ("L = sum_ij(softmax_j(z_ij) W_ij)", lambda v, W=W: jnp.sum(jax.nn.softmax(v, axis=1) * W)),
            ("L = sum_i(logsumexp_j(z_ij))", lambda v: jnp.sum(jax.nn.logsumexp(v, axis=1))),
        ):
            e = ix.parse(text)
            grad = ix.diff(e, "z")
            want_value, want_grad = jax.value_and_grad(fn)(jnp.asarray(z))
            assert want_grad.dtype == dtype
            for route in ROUTES:
                atol = tol * max(1.0, abs(float(want_value)))
                np.testing.assert_allclose(run(e, {"z": z, "W": W}, route), np.asarray(want_value), rtol=tol, atol=atol)
                np.testing.assert_allclose(
                    run(grad, {"z": z, "W": W}, route), np.asarray(want_grad), rtol=tol * 10, atol=tol * 10
                )


# -- logdet of an ill-conditioned matrix ----------------------------------------------------------------------


def ill_conditioned(n: int, condition: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An SPD matrix U diag(λ) Uᵀ with λ from 1 down to 1/condition, its exact logdet Σ log λ and its inverse."""
    rng = np.random.default_rng(500)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.logspace(0, -np.log10(condition), n)
    C = (U * lam) @ U.T
    C = (C + C.T) / 2  # exactly symmetric, as a covariance is stored
    return C, np.sum(np.log(lam)), (U / lam) @ U.T


def test_logdet_of_an_spd_matrix_with_condition_number_1e8() -> None:
    """Tolerances. LAPACK's LU is backward stable: it factors C + E with |E| ≈ ε|C| entrywise, which moves logdet
    by tr(C⁻¹E), about ε κ √n ≈ 2e-7 for rounding errors of random sign (κ = 1e8, n = 500): we allow 1e-6 absolute
    against the exact Σ log λ (the value is about −4605, so a relative 2e-10; measured: 1.5e-10 absolute). The
    computed inverse has a relative error of about κ ε = 1e-8 at worst (measured: 1.2e-9): the gradient must match
    the exact C⁻ᵀ = U diag(1/λ) Uᵀ to 1e-7 of its largest entry (1e8)."""
    n, kappa = 500, 1e8
    C, exact, inverse = ill_conditioned(n, kappa)
    e = ix.parse("logdet(C_ij)")
    grad = ix.diff(e, "C")
    f = ix.compile(e, grad)
    value, g = f(C=C)
    sign, slog = np.linalg.slogdet(C)
    assert sign == 1
    for got in (value, ix.evaluate(e, {"C": C})):
        assert abs(float(got) - slog) <= 1e-9 * abs(slog)  # the same LAPACK factorization
        assert abs(float(got) - exact) <= 1e-6
    scale = np.max(np.abs(inverse))
    for got in (g, ix.evaluate(grad, {"C": C})):
        assert got.shape == (n, n)
        assert np.max(np.abs(got - inverse.T)) <= 1e-7 * scale
        assert np.max(np.abs(got - np.linalg.inv(C).T)) <= 1e-7 * scale


def test_logdet_gradient_of_a_non_symmetric_matrix_is_the_inverse_transpose() -> None:
    rng = np.random.default_rng(4)
    C = np.eye(6) * 4 + rng.normal(size=(6, 6))
    assert np.linalg.det(C) > 0
    grad = ix.diff(ix.parse("logdet(C_ij)"), "C")
    for route in ROUTES:
        np.testing.assert_allclose(run(grad, {"C": C}, route), np.linalg.inv(C).T, rtol=1e-12, atol=1e-14)
    # ... and central differences, entry by entry
    f = ix.compile(ix.parse("logdet(C_ij)"))
    h, fd = 1e-6, np.empty_like(C)
    for k in np.ndindex(C.shape):
        E = np.zeros_like(C)
        E[k] = h
        fd[k] = (f(C=C + E) - f(C=C - E)) / (2 * h)
    np.testing.assert_allclose(run(grad, {"C": C}, "compile"), fd, atol=1e-8)


# -- max and min: ties --------------------------------------------------------------------------------------------


TIES = np.array([[3.0, 1.0, 3.0, -2.0], [2.0, 2.0, 2.0, 2.0], [0.0, 5.0, -1.0, 4.0], [-7.0, -7.0, 1.0, 1.0]])


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_split_the_gradient_equally_among_ties(route: str, name: str) -> None:
    """The derivative of max_j is 1/(number of maxima) at each maximum (JAX's convention for jnp.max/jnp.min:
    jax.grad(jnp.max)([3., 1., 3.]) is [0.5, 0., 0.5]; torch.amax does the same, torch.max(dim) picks one)."""
    pick = getattr(np, name)
    w = np.array([1.0, -2.0, 0.5, 3.0])
    grad = ix.diff(ix.parse(f"L = sum_i({name}_j(z_ij) w_i)"), "z")
    hit = (pick(TIES, axis=1, keepdims=True) == TIES).astype(float)
    want = w[:, None] * hit / hit.sum(axis=1, keepdims=True)
    got = run(grad, {"z": TIES, "w": w}, route)
    np.testing.assert_array_equal(got, want)
    assert np.allclose(got.sum(axis=1), w)  # each row's weight is conserved
    # the value itself
    np.testing.assert_array_equal(run(ix.parse(f"{name}_j(z_ij)"), {"z": TIES}, route), pick(TIES, axis=1))


def test_max_tie_convention_matches_jax() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    for name in ("max", "min"):
        want = jax.grad(lambda z, n=name: getattr(jax.numpy, n)(z, axis=1).sum())(jax.numpy.asarray(TIES))
        got = ix.evaluate(ix.diff(ix.parse(f"sum_i({name}_j(z_ij))"), "z"), {"z": TIES})
        np.testing.assert_array_equal(got, np.asarray(want))


def test_max_tie_gradient_in_reverse_mode() -> None:
    program = ix.parse("m_i = max_j(z_ij)\nL = sum_i(m_i w_i)")
    w = np.array([1.0, -2.0, 0.5, 3.0])
    _, dz = ix.compile(ix.grad(program, wrt=["z"]))(z=TIES, w=w)
    hit = (TIES.max(axis=1, keepdims=True) == TIES).astype(float)
    np.testing.assert_array_equal(dz, w[:, None] * hit / hit.sum(axis=1, keepdims=True))


# -- the naive spellings at large logits ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_naive_spellings_are_stable_at_large_logits(route: str) -> None:
    u = logits(1e4, np.float64)
    s, lse = softmax_ref(u), lse_ref(u)
    for text, want in (
        ("f_ij = exp(u_ij) / sum_k(exp(u_ik))", s),
        ("log(sum_j(exp(u_ij)))", lse),
        ("f_ij = log(softmax_j(u_ij))", u - lse[:, None]),
        ("f_ij = log(exp(u_ij) / sum_k(exp(u_ik)))", u - lse[:, None]),
    ):
        got = run(ix.parse(text), {"u": u}, route)
        assert np.all(np.isfinite(got)), text
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=text)
    # their gradients too (the log-softmax's: δ − softmax, weighted)
    W = np.random.default_rng(5).normal(size=u.shape)
    grad = ix.diff(ix.parse("L = sum_ij(W_ij log(exp(u_ij) / sum_k(exp(u_ik))))"), "u")
    want = W - s * W.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run(grad, {"u": u, "W": W}, route), want, rtol=1e-10, atol=1e-10)


# -- empty and one-element axes, nan and inf ----------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_one_element_axes(route: str) -> None:
    z = np.array([[3.0], [-1e4], [1e4]])
    for text, want in (
        ("softmax_j(z_ij)", np.ones_like(z)),
        ("logsumexp_j(z_ij)", z[:, 0]),
        ("mean_j(z_ij)", z[:, 0]),
        ("max_j(z_ij)", z[:, 0]),
        ("min_j(z_ij)", z[:, 0]),
    ):
        e = ix.parse(text)
        np.testing.assert_array_equal(run(e, {"z": z}, route), want, err_msg=text)
        # the derivative of each is the identity on the one element (softmax: constant 1, so zero)
        d = run(ix.diff(ix.parse(f"sum_i{'j' if 'softmax' in text else ''}({text})"), "z"), {"z": z}, route)
        np.testing.assert_allclose(d, np.zeros_like(z) if text.startswith("softmax") else np.ones_like(z))


@pytest.mark.parametrize("route", ROUTES)
def test_empty_axes(route: str) -> None:
    """Over an index of length 0: softmax is the empty array (it has no entries), logsumexp is −∞ (log 0, as
    scipy.special.logsumexp and jax.nn.logsumexp), mean is nan (0/0, as np.mean), and max/min have no value: a
    ShapeError pointing at the operator (numpy raises a ValueError; so do jnp.max and torch.amax)."""
    z = np.zeros((3, 0))
    assert run(ix.parse("softmax_j(z_ij)"), {"z": z}, route).shape == (3, 0)
    np.testing.assert_array_equal(run(ix.parse("logsumexp_j(z_ij)"), {"z": z}, route), np.full(3, -np.inf))
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):  # numpy's own warning, as np.mean gives
        assert np.all(np.isnan(run(ix.parse("mean_j(z_ij)"), {"z": z}, route)))
    for name in ("max", "min"):
        text = f"L = sum_i({name}_j(z_ij) w_i)"
        with pytest.raises(ix.ShapeError, match="index of length 0") as err:
            run(ix.parse(text), {"z": z, "w": np.ones(3)}, route)
        assert "^^^" in str(err.value) and err.value.hint
        # the gradient (an indicator with no entries) is the empty array
        grad = ix.diff(ix.parse(text), "z")
        assert run(grad, {"z": z, "w": np.ones(3)}, route).shape == (3, 0)
    # an empty axis that is not reduced: empty results
    assert run(ix.parse("logsumexp_j(z_ji)"), {"z": z}, route).shape == (0,)


INFINITE = np.array(
    [
        [np.inf, 0.0, 1.0],  # +inf: nan throughout, as scipy.special.softmax and jax.nn.softmax
        [-np.inf, 0.0, 1.0],  # a masked entry: exactly 0, the rest normalized
        [-np.inf, -np.inf, -np.inf],  # all masked: nan (0/0), as scipy and jax
        [np.nan, 0.0, 1.0],  # nan: nan throughout
        [1e308, -1e308, 0.0],  # finite extremes: no overflow
    ]
)


@pytest.mark.parametrize("route", ROUTES)
def test_nan_and_inf_follow_scipy(route: str) -> None:
    got = run(ix.parse("softmax_j(z_ij)"), {"z": INFINITE}, route)
    assert np.all(np.isnan(got[[0, 2, 3]]))
    np.testing.assert_allclose(got[1], softmax_ref(INFINITE[1:2])[0], rtol=1e-15)
    assert got[1, 0] == 0.0
    np.testing.assert_array_equal(got[4], [1.0, 0.0, 0.0])
    lse = run(ix.parse("logsumexp_j(z_ij)"), {"z": INFINITE}, route)
    np.testing.assert_array_equal(lse[[0, 2]], [np.inf, -np.inf])
    assert np.isnan(lse[3])
    np.testing.assert_allclose(lse[1], np.log(1 + np.e), rtol=1e-15)
    assert lse[4] == 1e308
    # the masked row's gradient is finite, 0 at the masked entry
    W = np.arange(3.0)
    grad = run(ix.diff(ix.parse("L = sum_j(softmax_j(z_j) W_j)"), "z"), {"z": INFINITE[1], "W": W}, route)
    s = softmax_ref(INFINITE[1:2])[0]
    np.testing.assert_allclose(grad, s * (W - W @ s), rtol=1e-14, atol=0)
    assert grad[0] == 0.0


def test_nan_and_inf_match_scipy_where_installed() -> None:
    special = pytest.importorskip("scipy.special")
    with np.errstate(all="ignore"):
        want_softmax = special.softmax(INFINITE, axis=1)
        want_lse = special.logsumexp(INFINITE, axis=1)
    for route in ROUTES:
        np.testing.assert_array_equal(run(ix.parse("softmax_j(z_ij)"), {"z": INFINITE}, route), want_softmax)
        np.testing.assert_allclose(
            run(ix.parse("logsumexp_j(z_ij)"), {"z": INFINITE}, route), want_lse, rtol=1e-15, equal_nan=True
        )


# -- a batched attention head at large float32 logits (batched products run as np.matmul) ----------------------


def test_batched_attention_backward_at_large_float32_logits() -> None:
    program = ix.parse(
        "S_bij = 0.125 Q_bia K_bja\nP_bij = softmax_j(S_bij)\nO_bia = P_bij V_bja\nL = sum_bia(O_bia G_bia)"
    )
    backward = ix.grad(program, wrt=["Q", "K", "V"])
    rng = np.random.default_rng(6)
    Q, K, V, G = (rng.normal(size=(3, 5, 4)) for _ in range(4))
    Q *= 200  # logits up to about ±100 and more
    S = np.einsum("bia,bja->bij", Q, K) / 8
    assert np.abs(S).max() > 100
    P = np.exp(S - S.max(axis=2, keepdims=True))
    P /= P.sum(axis=2, keepdims=True)
    dP = np.einsum("bia,bja->bij", G, V)
    dS = P * (dP - np.sum(dP * P, axis=2, keepdims=True)) / 8
    want = (np.sum((P @ V) * G), dS @ K, dS.transpose(0, 2, 1) @ Q, P.transpose(0, 2, 1) @ G)
    arrays = {"Q": Q, "K": K, "V": V, "G": G}
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        got = ix.compile(backward)(**{k: v.astype(dtype) for k, v in arrays.items()})
        for g, w in zip(got, want):
            assert g.dtype == dtype and g.shape == np.shape(w)
            assert np.max(np.abs(g - w)) <= tol * max(1.0, float(np.max(np.abs(w))))
