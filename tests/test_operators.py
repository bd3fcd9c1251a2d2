"""Operators over an index (softmax_j, logsumexp_j, mean_j, max_j, min_j) and matrix functions (inv, det, logdet):
the notation, its errors, values against numpy, derivatives against central differences and closed forms, the
identities and naive spellings, and reverse mode reusing forward names."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

rng = np.random.default_rng(8)


def _spd(n: int) -> np.ndarray:
    b = rng.normal(size=(n, n))
    return b @ b.T / n + np.eye(n)


def _central(text: str, arrays: dict[str, np.ndarray], wrt: str, h: float = 1e-6) -> np.ndarray:
    """∂e/∂wrt by central differences of ix.evaluate, axes e.free + wrt's axes."""
    e = ix.parse(text)
    base = np.asarray(ix.evaluate(e, arrays))
    x = arrays[wrt]
    out = np.zeros(base.shape + x.shape)
    for k in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[k] += h
        minus[k] -= h
        hi = ix.evaluate(e, {**arrays, wrt: plus})
        lo = ix.evaluate(e, {**arrays, wrt: minus})
        out[(..., *k)] = (hi - lo) / (2 * h)
    return out


def _derivative(text: str, arrays: dict[str, np.ndarray], *wrt: str) -> np.ndarray:
    return np.asarray(ix.evaluate(ix.diff(ix.parse(text), *wrt), arrays))


# -- the notation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, free",
    [
        ("softmax_j(z_ij)", ("i", "j")),
        ("logsumexp_j(z_ij)", ("i",)),
        ("mean_j(x_ij)", ("i",)),
        ("mean_bi(x_bi)", ()),
        ("max_j(x_ij)", ("i",)),
        ("min_i(x_ij)", ("j",)),
        ("softmax_jk(z_ijk)", ("i", "j", "k")),
        ("inv(A_ij)", ("i", "j")),
        ("x_i inv(A_ij) x_j", ()),
        ("inv(X_ni X_nj + lam δ_ij)", ("i", "j")),
        ("det(A_ij)", ()),
        ("logdet(A_ik A_jk)", ()),
        ("x_j softmax_j(z_j)", ()),
        ("P_ij = softmax_j(S_ij)", ("i", "j")),
    ],
)
def test_free_indices_and_print_parse_round_trip(text: str, free: tuple[str, ...]) -> None:
    e = ix.parse(text)
    assert e.free == free
    again = ix.parse(str(e))
    assert again == e and str(again) == str(e)


def test_operator_indices_are_bound_inside_the_argument() -> None:
    # softmax_j(x_j y_j) is the softmax of the element-wise product (j is not summed inside), as sum_j binds j.
    x, y = rng.normal(size=4), rng.normal(size=4)
    got = ix.evaluate(ix.parse("softmax_j(x_j y_j)"), {"x": x, "y": y})
    want = np.exp(x * y) / np.exp(x * y).sum()
    np.testing.assert_allclose(got, want)


def test_inverse_labels_follow_the_argument() -> None:
    a = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    inv = np.linalg.inv(a)
    np.testing.assert_allclose(ix.evaluate(ix.parse("inv(A_ij)"), {"A": a}), inv)
    np.testing.assert_allclose(ix.evaluate(ix.parse("inv(A_ji)"), {"A": a}), inv.T)  # (Aᵀ)⁻¹
    np.testing.assert_allclose(ix.evaluate(ix.parse("f_ji = inv(A_ij)"), {"A": a}), inv.T)
    np.testing.assert_allclose(ix.evaluate(ix.parse("A_ij inv(A_jk)"), {"A": a}), np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    "text, reference",
    [
        ("softmax_j(z_ij)", lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)),
        ("logsumexp_j(z_ij)", lambda z: np.log(np.exp(z).sum(1))),
        ("mean_j(z_ij)", lambda z: z.mean(1)),
        ("mean_ij(z_ij)", lambda z: z.mean()),
        ("max_j(z_ij)", lambda z: z.max(1)),
        ("min_i(z_ij)", lambda z: z.min(0)),
        ("softmax_i(z_ij)", lambda z: np.exp(z) / np.exp(z).sum(0, keepdims=True)),
    ],
)
def test_index_operator_values(text: str, reference) -> None:
    z = rng.normal(size=(3, 5))
    np.testing.assert_allclose(ix.evaluate(ix.parse(text), {"z": z}), reference(z))
    np.testing.assert_allclose(ix.compile(ix.parse(text))(z=z), reference(z))


def test_matrix_function_values() -> None:
    c = _spd(4)
    x = rng.normal(size=4)
    arrays = {"C": c, "x": x}
    np.testing.assert_allclose(ix.evaluate(ix.parse("x_i inv(C_ij) x_j"), arrays), x @ np.linalg.solve(c, x))
    np.testing.assert_allclose(ix.evaluate(ix.parse("det(C_ij)"), arrays), np.linalg.det(c))
    np.testing.assert_allclose(ix.evaluate(ix.parse("logdet(C_ij)"), arrays), np.linalg.slogdet(c)[1])
    np.testing.assert_allclose(ix.evaluate(ix.parse("det(C_ik C_kj)"), arrays), np.linalg.det(c) ** 2)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("inv(x_i)", "exactly two free indices"),
        ("det(A_ijk)", "exactly two free indices"),
        ("logdet(2)", "no free index"),
        ("inv(A_ii)", "no free index"),
        ("f_i = x_i det(A_ij)", "already bound"),
        ("L_j = logsumexp_j(z_ij)", "already bound"),
        ("sum_j(mean_j(x_ij))", "already bound"),
        ("softmax_j(x_i)", "not a free index"),
        ("max(x_i)", "needs the index"),
        ("inv_ij(A_ij)", "inv takes no indices"),
        ("mean_jj(x_ij)", "repeats index"),
        ("mean_j (x_ij)", "operator over an index"),
        ("x_i + det", "matrix function"),
        ("softmax_j(z_ij", "never closed"),
    ],
)
def test_bad_operator_input_is_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(ix.IndexDiffError) as info:
        ix.parse(text)
    message = str(info.value)
    assert fragment in message
    assert "^" in message and text in message


def test_singular_and_non_square_matrices_are_clear_errors() -> None:
    with pytest.raises(ix.ShapeError, match="singular"):
        ix.evaluate(ix.parse("inv(A_ij)"), {"A": np.ones((3, 3))})
    with pytest.raises(ix.ShapeError, match="negative"):
        ix.evaluate(ix.parse("logdet(A_ij)"), {"A": -np.eye(3)})
    with pytest.raises(ix.ShapeError, match="square"):
        ix.evaluate(ix.parse("det(A_ij)"), {"A": np.ones((2, 3))})
    with pytest.raises(ix.ShapeError, match="square"):
        ix.compile(ix.parse("inv(A_ij)"))(A=np.ones((2, 3)))


# -- derivatives ------------------------------------------------------------------------------------------------


CASES = [
    ("sum_ij(softmax_j(A_ij x_j) B_ij)", "A"),
    ("sum_ij(softmax_j(A_ij x_j) B_ij)", "x"),
    ("sum_i(logsumexp_j(A_ij x_j))", "x"),
    ("sum_i(mean_j(A_ij x_j)^2)", "x"),
    ("sum_i(max_j(A_ij x_j))", "A"),
    ("sum_i(min_j(A_ij x_j) B_i1)", "x"),
    ("x_i inv(C_ij) x_j", "C"),
    ("x_i inv(C_ij) x_j", "x"),
    ("logdet(C_ij)", "C"),
    ("det(C_ij)", "C"),
    ("logdet(C_ik C_jk + δ_ij)", "C"),
    ("sum_ij(inv(C_ij + x_i x_j))", "x"),
]


def _arrays() -> dict[str, np.ndarray]:
    return {
        "A": rng.normal(size=(3, 4)),
        "B": rng.normal(size=(3, 4)),
        "B1": rng.normal(size=3),
        "x": rng.normal(size=4),
        "C": _spd(4),
    }


@pytest.mark.parametrize("text, wrt", CASES)
def test_first_derivatives_match_central_differences(text: str, wrt: str) -> None:
    text = text.replace("B_i1", "b_i")
    arrays = _arrays()
    arrays["b"] = arrays.pop("B1")
    got = _derivative(text, arrays, wrt)
    want = _central(text, arrays, wrt)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_closed_forms_of_the_matrix_derivatives() -> None:
    c, x = _spd(4), rng.normal(size=4)
    inv = np.linalg.inv(c)
    arrays = {"C": c, "x": x}
    np.testing.assert_allclose(_derivative("logdet(C_ij)", arrays, "C"), inv.T)
    np.testing.assert_allclose(_derivative("det(C_ij)", arrays, "C"), np.linalg.det(c) * inv.T)
    np.testing.assert_allclose(_derivative("x_i inv(C_ij) x_j", arrays, "C"), -np.outer(inv.T @ x, inv @ x).T)
    np.testing.assert_allclose(_derivative("x_i inv(C_ij) x_j", arrays, "x"), (inv + inv.T) @ x)


def test_softmax_jacobian_is_s_times_delta_minus_s() -> None:
    z = rng.normal(size=5)
    s = np.exp(z) / np.exp(z).sum()
    got = _derivative("softmax_j(z_j)", {"z": z}, "z")
    np.testing.assert_allclose(got, np.diag(s) - np.outer(s, s))


def test_max_ties_split_the_derivative_equally() -> None:
    # JAX's convention for max reductions: the cotangent is shared equally by the entries that attain the max.
    x = np.array([1.0, 3.0, 3.0, 2.0])
    got = _derivative("max_j(x_j)", {"x": x}, "x")
    np.testing.assert_allclose(got, [0, 0.5, 0.5, 0])
    got = _derivative("min_j(x_j)", {"x": np.array([1.0, 1.0, 1.0])}, "x")
    np.testing.assert_allclose(got, [1 / 3] * 3)


def test_second_derivatives() -> None:
    c, x = _spd(3), rng.normal(size=3)
    inv = np.linalg.inv(c)
    # The Hessian of a Gaussian log-likelihood's quadratic part w.r.t. the mean is inv(C) + inv(C)ᵀ.
    text = "0.5 (x_i - m_i) inv(C_ij) (x_j - m_j)"
    got = _derivative(text, {"C": c, "x": x, "m": np.zeros(3)}, "m", "m")
    np.testing.assert_allclose(got, 0.5 * (inv + inv.T))
    # The Hessian of logdet w.r.t. the matrix: ∂²/∂C_kl ∂C_mn = -inv(C)_nk inv(C)_lm.
    got = _derivative("logdet(C_ij)", {"C": c}, "C", "C")
    np.testing.assert_allclose(got, -np.einsum("nk,lm->klmn", inv, inv))
    # The Hessian of a log-sum-exp: diag(s) - s sᵀ.
    z = rng.normal(size=4)
    s = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(_derivative("logsumexp_j(z_j)", {"z": z}, "z", "z"), np.diag(s) - np.outer(s, s))


# -- identities and naive spellings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "naive, operator",
    [
        ("exp(u_ij) / sum_k(exp(u_ik))", "softmax_j(u_ij)"),
        ("P_ij = exp(S_ij) / sum_k(exp(S_ik))", "P_ij = softmax_j(S_ij)"),
        ("log(sum_j(exp(u_ij)))", "logsumexp_j(u_ij)"),
        ("sum_j(x_ij) / δ_jj", "mean_j(x_ij)"),
        ("log(softmax_j(z_ij))", "f_ij = z_ij - logsumexp_k(z_ik)"),
    ],
)
def test_naive_spellings_become_operators(naive: str, operator: str) -> None:
    assert str(ix.parse(naive)) == operator


def test_naive_softmax_is_stable_at_large_logits() -> None:
    z = np.array([[1e4, -1e4, 0.0], [5e3, 5e3, -1e4]])
    got = ix.evaluate(ix.parse("exp(z_ij) / sum_k(exp(z_ik))"), {"z": z})
    np.testing.assert_allclose(got, [[1, 0, 0], [0.5, 0.5, 0]])
    ce = ix.parse("-sum_ij(y_ij log(exp(z_ij) / sum_k(exp(z_ik))))")
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert np.isfinite(ix.evaluate(ce, {"z": z, "y": y}))
    np.testing.assert_allclose(ix.evaluate(ce, {"z": z, "y": y}), 2e4 + 1.5e4 + np.log(2))
    grad = ix.evaluate(ix.diff(ce, "z"), {"z": z, "y": y})
    np.testing.assert_allclose(grad, [[1, -1, 0], [0.5, 0.5, -1]])


@pytest.mark.parametrize(
    "text, wrt, result",
    [
        ("sum_ij(softmax_j(A_ij x_j))", "x", "f_k = 0"),  # rows of a softmax sum to one
        ("sum_j(softmax_j(z_ij))", "z", "f_ikl = 0"),
        ("sum_j(inv(A_ij) A_jk)", "A", "f_iklm = 0"),  # inv(A) A = δ
        ("logdet(inv(A_ij)) + logdet(A_ij)", "A", "f_kl = 0"),
        ("det(inv(A_ij)) det(A_ij)", "A", "f_kl = 0"),
    ],
)
def test_identities_simplify_derivatives(text: str, wrt: str, result: str) -> None:
    assert str(ix.diff(ix.parse(text), wrt)) == result


def test_identities_in_expressions() -> None:
    assert str(ix.parse("inv(A_ij) A_jk").node) != ""  # parses
    a = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    simplified = ix.diff(ix.parse("x_i inv(A_ij) A_jk y_k"), "x")
    assert "inv" not in str(simplified)
    np.testing.assert_allclose(ix.evaluate(simplified, {"A": a, "y": np.arange(3.0), "x": np.ones(3)}), np.arange(3.0))


# -- reverse mode -----------------------------------------------------------------------------------------------

ATTENTION = """S_ij = Q_ia K_ja
P_ij = softmax_j(S_ij)
O_ia = P_ij V_ja
L = sum_ia(O_ia G_ia)"""


def test_softmax_adjoint_reuses_the_forward_softmax() -> None:
    g = ix.grad(ix.parse(ATTENTION), wrt=["Q", "K", "V"])
    ds = str(g["dS"])
    assert ds.startswith("dS_ij = ")
    assert "softmax" not in ds and "exp" not in ds and "P_ij (dP_ij - " in ds  # P (dP - Σ P dP): factoring.py


def test_attention_gradients_match_a_hand_written_backward_at_large_logits() -> None:
    n, m, d = 4, 5, 3
    q, k, v, gout = (rng.normal(size=s) for s in [(n, d), (m, d), (m, d), (n, d)])
    q *= 300  # logits of order 1e3
    f = ix.compile(ix.grad(ix.parse(ATTENTION), wrt=["Q", "K", "V"]))
    loss, dq, dk, dv = f(Q=q, K=k, V=v, G=gout)
    s = q @ k.T
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dp = gout @ v.T
    dsm = p * (dp - (dp * p).sum(1, keepdims=True))
    np.testing.assert_allclose(loss, np.sum(p @ v * gout))
    np.testing.assert_allclose(dv, p.T @ gout, atol=1e-12)
    np.testing.assert_allclose(dq, dsm @ k, atol=1e-9)
    np.testing.assert_allclose(dk, dsm.T @ q, atol=1e-6)


def test_gaussian_gradient_program() -> None:
    p = ix.parse("r_ni = x_ni - mu_i\nL = 0.5 N logdet(C_ij) + 0.5 sum_n(r_ni inv(C_ij) r_nj)")
    c, x, mu = _spd(3), rng.normal(size=(6, 3)), rng.normal(size=3)
    f = ix.compile(ix.grad(p, wrt=["mu", "C"]))
    loss, dmu, dc = f(x=x, mu=mu, C=c, N=np.array(6.0))
    inv, r = np.linalg.inv(c), x - mu
    np.testing.assert_allclose(loss, 0.5 * 6 * np.linalg.slogdet(c)[1] + 0.5 * np.einsum("ni,ij,nj", r, inv, r))
    np.testing.assert_allclose(dmu, -0.5 * (inv + inv.T) @ r.sum(0))
    np.testing.assert_allclose(dc, 0.5 * 6 * inv.T - 0.5 * inv.T @ r.T @ r @ inv.T)


def test_compiled_value_gradient_and_hessian_share_one_inversion(monkeypatch: pytest.MonkeyPatch) -> None:
    a, x = _spd(4), rng.normal(size=4)
    e = ix.parse("x_i inv(A_ij) x_j + logdet(A_ij)")
    f = ix.compile(e, ix.diff(e, "A"), ix.diff(e, "x"), ix.diff(e, "x", "x"))
    calls = []
    inverse = np.linalg.inv
    monkeypatch.setattr(np.linalg, "inv", lambda m: calls.append(1) or inverse(m))
    value, da, dx, dxx = f(A=a, x=x)
    assert len(calls) == 1  # inv(A_ij), inv(A_lk), inv(A_jk)...: one matrix, one inversion per call
    inv = np.linalg.inv(a)
    np.testing.assert_allclose(value, x @ inv @ x + np.linalg.slogdet(a)[1])
    np.testing.assert_allclose(da, -np.outer(inv.T @ x, inv @ x) + inv.T)
    np.testing.assert_allclose(dx, (inv + inv.T) @ x)
    np.testing.assert_allclose(dxx, inv + inv.T)


@pytest.mark.parametrize(
    "text, wrt",
    [
        ("softmax_j(a + 0 u_j)", "a"),  # the argument loses j: a witness keeps its length
        ("logsumexp_j(a + u_j - u_j)", "a"),
        ("u_q softmax_q(A_iq - A_iq)", "u"),  # the argument simplifies to 0: the witness must not fold away
        ("logsumexp_q(0 A_iq) u_i", "u"),
        ("sum_i(inv(A_ij) δ_ij)", "A"),  # a delta on an inverse's two indices stays a delta (the diagonal)
        ("sum_ij(softmax_j(z_ij) δ_ij)", "z"),  # ... and on a softmax's index
        ("sum_jk(softmax_jk(z_jk) δ_jk)", "z"),
    ],
)
def test_operator_edges_keep_their_meaning(text: str, wrt: str) -> None:
    e = ix.parse(text)
    d = ix.diff(e, wrt)
    assert ix.parse(str(d)) == d
    arrays = {"a": np.array(0.3), "u": rng.normal(size=3), "A": _spd(3), "z": rng.normal(size=(3, 3))}
    arrays = {k: v for k, v in arrays.items() if k in e.variables}
    np.testing.assert_allclose(ix.evaluate(d, arrays), _central(text, arrays, wrt), rtol=1e-6, atol=1e-8)


def test_a_term_constant_along_a_summed_index_is_scaled_not_broadcast() -> None:
    # Σ_n (0.5 logdet(C) + 0.5 r_n inv(C) r_n) by C: the n-independent inv(C) is n times one matrix, never a
    # (n, i, j) broadcast (4 GB at n = 2000, i = j = 512).
    e = ix.parse("sum_n(0.5 logdet(C_ij) + 0.5 r_ni inv(C_ij) r_nj)")
    g = ix.diff(e, "C")
    sizes = {"n": 2000, "i": 512, "j": 512, "k": 512, "l": 512}
    assert ix.cost(g, sizes).largest_intermediate <= 512 * 512
    c, r = _spd(4), rng.normal(size=(6, 4))
    inv = np.linalg.inv(c)
    want = 6 * 0.5 * inv.T - 0.5 * inv.T @ r.T @ r @ inv.T
    np.testing.assert_allclose(ix.evaluate(g, {"C": c, "r": r}), want)
    np.testing.assert_allclose(ix.compile(g)(C=c, r=r), want)
    np.testing.assert_allclose(ix.evaluate(ix.parse("sum_j(A_ij - a)"), {"A": np.ones((2, 3)), "a": 0.5}), [1.5, 1.5])


def test_identities_apply_before_differentiating() -> None:
    # inv(inv(M)) is M: its derivative has no inverse left (fuzz F7).
    e = ix.parse("inv(inv(X_rj X_ri + δ_ji))")
    d = ix.diff(e, "X")
    assert "inv" not in str(d)
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(ix.evaluate(d, {"X": x}), _central(str(e), {"X": x}, "X"), rtol=1e-6, atol=1e-8)
