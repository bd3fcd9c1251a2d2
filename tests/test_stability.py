"""A softmax written inside one expression differentiates as stably as its value (no exp(S) alone, no 1/Σexp^2)."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

SOFTMAX = ix.parse("L = sum_ij(exp(S_ij) / sum_k(exp(S_ik)) T_ij)")


def _softmax_vjp(S: np.ndarray, T: np.ndarray) -> np.ndarray:
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    return P * (T - (T * P).sum(axis=1, keepdims=True))


@pytest.mark.parametrize(("scale", "dtype", "tol"), [(1e4, np.float64, 1e-12), (100.0, np.float32, 1e-5)])
def test_softmax_gradient_in_one_expression_is_stable_at_large_logits(scale: float, dtype: type, tol: float) -> None:
    rng = np.random.default_rng(1)
    S = (rng.standard_normal((3, 5)) * scale).astype(dtype)
    T = rng.standard_normal((3, 5)).astype(dtype)
    g = ix.diff(SOFTMAX, "S")
    expected = _softmax_vjp(S.astype(np.float64), T.astype(np.float64))
    for value in (ix.evaluate(g, {"S": S, "T": T}), ix.compile(g)(S=S, T=T)):
        assert value.dtype == dtype
        np.testing.assert_allclose(value, expected, atol=tol)
    assert np.all(np.isfinite(ix.compile(ix.diff(SOFTMAX, "S", "S"))(S=S, T=T)))


def test_softmax_derivatives_in_one_expression_match_finite_differences() -> None:
    assert ix.check(SOFTMAX, "S", "S").ok
    assert "^-2" not in str(ix.diff(SOFTMAX, "S"))
