"""What the operator examples and benchmarks rely on beyond running (tests/test_examples.py runs every example):
the Gaussian likelihood's value and gradient contract the scatter matrix Σ_n r_ni r_nj once, and a first
contraction shared under other index names (or transposed) gives the same values as numpy."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import indexdiff as ix

COMPILE = importlib.import_module("indexdiff.builder")  # the module that builds compiled plans' steps


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[tuple[int, ...], ...]]]:
    """The contractions compiled plans are built from: (einsum spec, operand shapes)."""
    seen: list[tuple[str, tuple[tuple[int, ...], ...]]] = []
    original = COMPILE.contraction

    def recording(spec: str, shapes: list[tuple[int, ...]], numpy: bool):  # noqa: ANN202
        seen.append((spec, tuple(shapes)))
        return original(spec, shapes, numpy)

    monkeypatch.setattr(COMPILE, "contraction", recording)
    return seen


def test_gaussian_value_and_gradient_share_the_scatter_matrix(specs) -> None:
    program = ix.parse("r_ni = x_ni - mu_i\nL = 0.5 N logdet(C_ij) + 0.5 r_ni inv(C_ij) r_nj")
    gradient = ix.grad(program, wrt=["mu", "C"])
    rng = np.random.default_rng(0)
    n, d = 40, 12
    A = rng.normal(size=(d, d))
    C = A @ A.T / d + np.eye(d)
    x, mu = rng.normal(size=(n, d)), rng.normal(size=d)
    L, dmu, dC = ix.compile(gradient)(x=x, mu=mu, C=C, N=np.asarray(float(n)))
    scatter = [s for s, shapes in specs if shapes == ((n, d), (n, d))]
    assert len(scatter) == 1, specs  # Σ_n r_ni r_nj, once for the value and the gradient
    r, Ci = x - mu, np.linalg.inv(C)
    S = r.T @ r
    np.testing.assert_allclose(L, 0.5 * n * np.linalg.slogdet(C)[1] + 0.5 * np.sum(Ci * S), rtol=1e-12)
    np.testing.assert_allclose(dmu, -Ci @ r.sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dC, 0.5 * (n * Ci - Ci @ S @ Ci), rtol=1e-10, atol=1e-12)


def test_a_first_contraction_shared_transposed(specs) -> None:
    """Σ_n X_ni Y_nj (i from X) and Σ_n Y_nk X_nl (k from Y) are one matrix and its transpose."""
    e1 = ix.parse("f_ik = X_ni Y_nj Z_jk")
    e2 = ix.parse("g_kl = Y_nk X_nl W_lk")
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(300, 4)), rng.normal(size=(300, 5))
    Z, W = rng.normal(size=(5, 3)), rng.normal(size=(4, 5))
    f, g = ix.compile(e1, e2)(X=X, Y=Y, Z=Z, W=W)
    np.testing.assert_allclose(f, X.T @ Y @ Z, rtol=1e-12)
    np.testing.assert_allclose(g, (Y.T @ X) * W.T, rtol=1e-12)
    assert len([s for s, shapes in specs if set(shapes) == {(300, 4), (300, 5)}]) == 1, specs


def test_small_sums_stay_one_contraction(specs) -> None:
    """Below a few thousand multiply-adds a sum of three factors is one einsum call (no intermediate steps)."""
    e = ix.parse("x_i A_ij x_j")
    rng = np.random.default_rng(2)
    value = ix.compile(e)(x=rng.normal(size=5), A=rng.normal(size=(5, 5)))
    assert np.isfinite(value)
    assert [len(shapes) for _, shapes in specs] == [3]
