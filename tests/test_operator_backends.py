"""Operators on torch, jax and cupy arrays: compiled code keeps the array's library and uses its own softmax,
log-sum-exp and linear algebra, stable at large logits, with the same errors at singular matrices. The torch and
jax tests run where those are installed; the library code path itself runs here on numpy arrays, as cupy's."""

from __future__ import annotations

import numpy as np
import pytest
from op_numpy import lse, softmax, spd

import indexdiff as ix
from indexdiff.backends import Backend

Arrays = dict[str, np.ndarray]

_rng = np.random.default_rng(9)


def _logits(scale: float, dtype: type) -> np.ndarray:
    z = np.array([[1.0, -1.0, 0.5, 0.0], [1.0, 1.0, -1.0, 0.25], [-1.0, -0.5, -1.0, -0.75]]) * scale
    return z.astype(dtype)


# -- array libraries ----------------------------------------------------------------------------------------------


LIBRARY_CASES = [
    "sum_ij(softmax_j(z_ij) t_ij) + sum_i(logsumexp_j(z_ij) + mean_j(z_ij) + max_j(z_ij) + min_j(z_ij))",
    "softmax_jk(z_ijk) + sum_i(logsumexp_jk(z_ijk))",
    "x_i inv(A_ij) x_j + logdet(A_ij) + det(A_ij)",
]


def _library_data(e: ix.Expr) -> Arrays:
    data = {n: _rng.normal(size=(3,) * r) for n, r in e.variables.items()}
    if "A" in data:
        data["A"] = spd(_rng, 3) + 0.2 * data["A"]
    return data


def test_library_code_path_on_numpy_arrays() -> None:
    # The code torch, jax and cupy arrays take (their own softmax and linear algebra), run here with numpy as
    # the library, as cupy's (whose API numpy's is), against the numpy operators.
    as_cupy = Backend("numpy")
    as_cupy.name = "cupy"
    z = _rng.normal(size=(3, 4, 2))
    for name in ("softmax", "logsumexp", "mean", "max", "min", "ismax", "ismin"):
        for axes in ((1,), (0, 2)):
            want = Backend("numpy").operator(name, z, axes)
            np.testing.assert_allclose(as_cupy.operator(name, z, axes), want, rtol=1e-12)
    a = spd(_rng, 3)
    for name in ("inv", "det", "logdet"):
        np.testing.assert_allclose(as_cupy.operator(name, a, ()), Backend("numpy").operator(name, a, ()))
    with pytest.raises(ix.ShapeError, match="singular"):
        as_cupy.operator("inv", np.ones((2, 2)), ())
    with pytest.raises(ix.ShapeError, match="negative"):
        as_cupy.operator("logdet", -np.eye(3), ())
    big = _logits(1e4, np.float64)
    assert np.all(np.isfinite(as_cupy.operator("logsumexp", big, (1,))))
    assert np.all(np.isfinite(as_cupy.operator("softmax", big, (1,))))


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("text", LIBRARY_CASES)
def test_torch_and_jax_arrays_use_their_own_operators(library, text) -> None:
    module = pytest.importorskip(library)
    if library == "jax":
        module.config.update("jax_enable_x64", True)
        convert = module.numpy.asarray
    else:
        convert = module.tensor
    e = ix.parse(text)
    f = ix.compile(e, ix.diff(e, sorted(e.variables)[0]))
    data = _library_data(e)
    want = f(**data)
    got = f(**{n: convert(a) for n, a in data.items()})
    for g, w in zip(got, want):
        assert type(g).__module__.split(".")[0] in (library, "jaxlib")
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_torch_and_jax_singular_matrices_and_large_logits(library) -> None:
    module = pytest.importorskip(library)
    convert = module.numpy.asarray if library == "jax" else module.tensor
    with pytest.raises(ix.ShapeError, match="singular") as info:
        ix.compile(ix.parse("x_i inv(A_ij) x_j"))(A=convert(np.ones((2, 2))), x=convert(np.ones(2)))
    assert "inv(A_ij)" in str(info.value)
    with pytest.raises(ix.ShapeError, match="negative"):
        ix.compile(ix.parse("logdet(A_ij)"))(A=convert(-np.eye(3)))
    z = _logits(100.0, np.float32)
    e = ix.parse("logsumexp_j(z_ij)")
    value, grad = ix.compile(e, ix.diff(e, "z"))(z=convert(z))
    exact = z.astype(np.float64)
    np.testing.assert_allclose(np.asarray(value), lse(exact, 1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad), np.einsum("ik,il->ikl", np.eye(3), softmax(exact, 1)), atol=1e-6)


@pytest.mark.parametrize(("scale", "dtype", "tol"), [(1e4, np.float64, 1e-12), (100.0, np.float32, 1e-6)])
def test_gradients_match_jax_at_large_logits(scale, dtype, tol) -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    z = _logits(scale, dtype)
    t = _rng.normal(size=(3, 4)).astype(dtype)
    e = ix.parse("sum_i(logsumexp_j(z_ij)) + sum_ij(softmax_j(z_ij) t_ij)")
    grad = ix.compile(ix.diff(e, "z"))(z=z, t=t)

    def loss(z):
        return jax.numpy.sum(jax.nn.logsumexp(z, axis=1)) + jax.numpy.sum(jax.nn.softmax(z, axis=1) * t)

    want = np.asarray(jax.jit(jax.grad(loss))(jax.numpy.asarray(z)))
    assert grad.dtype == dtype and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, want, rtol=tol, atol=tol)
