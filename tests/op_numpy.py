"""Operators written by hand in numpy (the stable textbook formulas), as references for the operator tests."""

from __future__ import annotations

import numpy as np


def spd(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random symmetric positive definite n×n matrix, well conditioned."""
    b = rng.normal(size=(n, n))
    return b @ b.T / n + np.eye(n)


def softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def lse(z: np.ndarray, axis: int) -> np.ndarray:
    m = z.max(axis=axis, keepdims=True)
    return np.log(np.exp(z - m).sum(axis=axis)) + np.squeeze(m, axis=axis)
