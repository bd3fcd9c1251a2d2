"""Compiled expressions on torch and jax arrays: the array's own library does the work, results match numpy.

These run where the library is installed (``pip install ".[bench]"`` brings both); numpy is covered everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

LOSS = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
EXPRS = (LOSS, ix.diff(LOSS, "w"), ix.diff(LOSS, "w", "w"), ix.diff(ix.parse("h_i = relu(x_i)^3 + tanh(x_i)"), "x"))


def _data(rng):
    return {"X": rng.normal(size=(30, 4)), "y": np.sign(rng.normal(size=30)), "w": rng.normal(size=4)}


def test_torch_arrays_stay_torch(rng):
    torch = pytest.importorskip("torch")
    f = ix.compile(*EXPRS[:3])
    data = _data(rng)
    want = f(**data)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        got = f(**{k: torch.tensor(v, dtype=dtype) for k, v in data.items()})
        for g, w in zip(got, want):
            assert isinstance(g, torch.Tensor) and g.dtype == dtype
            assert np.allclose(g.numpy(), w, rtol=tol, atol=tol)
    x = rng.normal(size=5)
    g = ix.compile(EXPRS[3])
    assert np.allclose(g(x=torch.tensor(x)).numpy(), g(x=x))  # a diagonal output


def test_jax_arrays_stay_jax(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    f = ix.compile(*EXPRS[:3])
    data = _data(rng)
    want = f(**data)
    got = f(**{k: jax.numpy.asarray(v) for k, v in data.items()})
    for g, w in zip(got, want):
        assert type(g).__module__.startswith("jax")
        assert np.allclose(np.asarray(g), w, rtol=1e-10, atol=1e-10)
    x = rng.normal(size=5)
    h = ix.compile(EXPRS[3])
    assert np.allclose(np.asarray(h(x=jax.numpy.asarray(x))), h(x=x))


def test_mixed_libraries_are_an_error(rng):
    torch = pytest.importorskip("torch")
    f = ix.compile(ix.parse("A_ij x_j"))
    with pytest.raises(ix.IndexDiffError, match="different libraries"):
        f(A=torch.ones(2, 3), x=np.ones(3))


def test_torch_zero_and_constant_outputs_are_tensors():
    torch = pytest.importorskip("torch")
    zero = ix.compile(ix.diff(ix.parse("b_i x_i"), "x", "x"))(b=torch.ones(3), x=torch.ones(3))
    assert isinstance(zero, torch.Tensor) and zero.shape == (3, 3) and not zero.any()
    e = ix.parse("2 c + cos(2)")
    value, grad = ix.compile(e, ix.diff(e, "c"))(c=torch.tensor(1.0))
    assert isinstance(grad, torch.Tensor) and float(grad) == 2.0 and np.isclose(float(value), 2 + np.cos(2))
