"""Compiled plans on dask arrays: lazy results, one graph for every output, each chunk of the data read once, chunk
rules and matrix functions, against numpy's compiled results and formulas written by hand.

These run where dask is installed (the test extra brings it); each dask test's numpy counterpart runs everywhere.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import indexdiff as ix

LOSS = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
LOGISTIC = (LOSS, ix.diff(LOSS, "w"), ix.diff(LOSS, "w", "w"))
# A two-layer network's gradient program over a batch b (tanh hidden layer, squared loss).
NET = ix.parse("z_bi = W_ij x_bj + c_i; h_bi = tanh(z_bi); r_bo = V_oi h_bi - t_bo; L = 0.5 sum_bo(r_bo^2)")
NET_GRAD = ix.grad(NET, wrt=["W", "c", "V"])


def _logistic_data(rng, n=120, d=6, dtype=np.float64):
    X = rng.normal(size=(n, d)).astype(dtype)
    return {"X": X, "y": np.sign(rng.normal(size=n)).astype(dtype), "w": (0.3 * rng.normal(size=d)).astype(dtype)}


def _logistic_by_hand(X, y, w):
    """Value, gradient and Hessian of Σ log(1 + exp(-y X w)), as one writes them in numpy."""
    z = y * (X @ w)
    s = 1 / (1 + np.exp(z))  # sigmoid(-z)
    return np.sum(np.logaddexp(0, -z)), -X.T @ (y * s), X.T @ (X * (s * (1 - s))[:, None])


def _net_data(rng, batch=64):
    return {
        "W": rng.normal(size=(5, 3)),
        "c": rng.normal(size=5),
        "V": rng.normal(size=(2, 5)),
        "x": rng.normal(size=(batch, 3)),
        "t": rng.normal(size=(batch, 2)),
    }


def _net_by_hand(W, c, V, x, t):
    """Loss and the gradients by W, c and V of the network, by the chain rule written out in numpy."""
    h = np.tanh(x @ W.T + c)
    r = h @ V.T - t
    dz = (r @ V) * (1 - h**2)
    return 0.5 * np.sum(r**2), dz.T @ x, dz.sum(axis=0), r.T @ h


def _close(got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.max(np.abs(want), initial=0))))


# -- the numpy counterparts (run everywhere) --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_logistic_matches_the_hand_written_formulas(rng, dtype):
    data = _logistic_data(rng, dtype=dtype)
    for got, want in zip(ix.compile(*LOGISTIC)(**data), _logistic_by_hand(**data)):
        assert got.dtype == dtype
        _close(got, want, 1e-10 if dtype == np.float64 else 1e-4)


def test_numpy_network_gradients_match_backprop_by_hand(rng):
    data = _net_data(rng)
    for got, want in zip(ix.compile(NET_GRAD)(**data), _net_by_hand(**data)):
        _close(got, want, 1e-10)


def test_compiling_numpy_arrays_imports_no_dask():
    code = (
        "import sys, numpy as np, indexdiff as ix; ix.compile(ix.parse('x_i x_i'))(x=np.ones(3)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- dask --------------------------------------------------------------------------------------------------------


@pytest.fixture
def da():
    return pytest.importorskip("dask.array")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_on_dask_is_lazy_and_matches_numpy(rng, da, dtype):
    import dask

    data = _logistic_data(rng, dtype=dtype)
    f = ix.compile(*LOGISTIC)
    lazy = f(X=da.from_array(data["X"], chunks=(40, 6)), y=da.from_array(data["y"], chunks=40), w=data["w"])
    assert all(isinstance(a, da.Array) and a.dtype == dtype for a in lazy)
    assert [a.shape for a in lazy] == [(), (6,), (6, 6)]
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for got, compiled, by_hand in zip(dask.compute(*lazy), f(**data), _logistic_by_hand(**data)):
        assert got.dtype == dtype
        _close(got, compiled, tol)
        _close(got, by_hand, tol)


def test_mixed_inputs_give_dask_results_and_all_numpy_stays_numpy(rng, da):
    data = _logistic_data(rng)
    f = ix.compile(*LOGISTIC)
    assert all(type(a) is np.ndarray for a in f(**data))
    every = {k: da.from_array(v) for k, v in data.items()}  # parameters as dask arrays too
    only_w = {**data, "w": da.from_array(data["w"])}  # a dask parameter, numpy data
    for arrays in (every, only_w):
        out = f(**arrays)
        assert all(isinstance(a, da.Array) for a in out)
        for got, want in zip(out, _logistic_by_hand(**data)):
            _close(got.compute(), want, 1e-10)
    # An output that depends on numpy inputs only (the Hessian of a quadratic form) is a dask array as well.
    q = ix.parse("x_i A_ij x_j")
    hess = ix.compile(ix.diff(q, "x", "x"))(A=data["X"][:6], x=da.ones(6, chunks=3))
    assert isinstance(hess, da.Array)
    _close(hess.compute(), data["X"][:6] + data["X"][:6].T, 1e-12)


def test_one_graph_reads_each_chunk_once_and_shares_subexpressions(rng, da):
    import dask

    data = _logistic_data(rng, n=200)
    reads: Counter[int] = Counter()

    def load(k):
        reads[k] += 1
        return data["X"][50 * k : 50 * (k + 1)]

    X = da.concatenate(
        [da.from_delayed(dask.delayed(load)(k), shape=(50, 6), dtype=np.float64) for k in range(4)], axis=0
    )
    lazy = ix.compile(*LOGISTIC)(X=X, y=data["y"], w=data["w"])
    graph = dict(dask.base.collections_to_expr(lazy, optimize_graph=False).__dask_graph__())
    names = Counter((k[0] if isinstance(k, tuple) else k).rsplit("-", 1)[0] for k in graph)
    # sigmoid(-y_i X_ij w_j) is shared by the gradient and the Hessian: one task per chunk, not one per output.
    assert names["_sigmoid"] == 4
    for got, want in zip(dask.compute(*lazy, scheduler="sync"), _logistic_by_hand(**data)):
        _close(got, want, 1e-10)
    assert reads == {0: 1, 1: 1, 2: 1, 3: 1}


def test_no_task_holds_more_than_a_chunk_of_the_data(rng, da):
    """The Hessian is (X_c d_c)ᵀ X_c per chunk, summed by a tree: no n-long or n×n intermediate."""
    import dask
    from dask.callbacks import Callback

    data = _logistic_data(rng, n=2000, d=8)
    X = da.from_array(data["X"], chunks=(250, 8))
    largest = []

    class Sizes(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            largest.append(getattr(result, "nbytes", 0))

    with Sizes():
        out = dask.compute(*ix.compile(*LOGISTIC)(X=X, y=da.from_array(data["y"], chunks=250), w=data["w"]))
    assert max(largest) <= 250 * 8 * 8 < data["X"].nbytes
    _close(out[2], _logistic_by_hand(**data)[2], 1e-10)


def test_network_gradient_program_over_a_chunked_batch(rng, da):
    import dask

    data = _net_data(rng, batch=96)
    lazy = ix.compile(NET_GRAD)(**{**data, "x": da.from_array(data["x"], chunks=(32, 3)), "t": data["t"]})
    assert all(isinstance(a, da.Array) for a in lazy)
    got = dask.compute(*lazy)
    for g, compiled, by_hand in zip(got, ix.compile(NET_GRAD)(**data), _net_by_hand(**data)):
        _close(g, compiled, 1e-10)
        _close(g, by_hand, 1e-10)


def test_disagreeing_chunks_are_rechunked_to_the_largest_inputs(rng, da):
    from indexdiff.daskarrays import aligned

    data = _logistic_data(rng)
    X, y = da.from_array(data["X"], chunks=(40, 3)), da.from_array(data["y"], chunks=25)
    out = aligned({"X": X, "y": y, "w": data["w"]}, [[("X", 0), ("y", 0)], [("X", 1), ("w", 0)]])
    assert out["y"].chunks == ((40, 40, 40),) and out["X"].chunks == X.chunks  # the data keeps its chunks
    assert out["w"].chunks == ((3, 3),)  # a numpy parameter takes the data's chunks along its index
    for got, want in zip(ix.compile(*LOGISTIC)(X=X, y=y, w=data["w"]), _logistic_by_hand(**data)):
        _close(got.compute(), want, 1e-10)
    # The rows and columns of A meet x's one index: all three take the chunks of A (the largest).
    A, x = rng.normal(size=(9, 9)), rng.normal(size=9)
    value = ix.compile(ix.parse("x_i A_ij x_j"))(A=da.from_array(A, chunks=(3, 4)), x=da.from_array(x, chunks=5))
    _close(value.compute(), x @ A @ x, 1e-12)


def test_integer_dask_data_is_computed_in_float64(da):
    f = ix.compile(ix.parse("A_ij x_j"))
    got = f(A=da.arange(12, chunks=5).reshape(3, 4), x=np.ones(4, dtype=np.float32))
    assert got.dtype == np.float64
    assert np.array_equal(got.compute(), np.arange(12.0).reshape(3, 4).sum(axis=1))


def test_matrix_functions_need_one_block(rng, da):
    A = np.eye(6) * 3 + 0.1 * rng.normal(size=(6, 6))
    x = rng.normal(size=6)
    for text in ("x_i inv(A_ij) x_j", "logdet(A_ij)", "det(A_ij) x_i x_i"):
        e = ix.parse(text)
        f = ix.compile(e, ix.diff(e, "A"))
        got = f(A=da.from_array(A), x=da.from_array(x, chunks=2)) if "x" in text else f(A=da.from_array(A))
        for g, want in zip(got, f(A=A, x=x) if "x" in text else f(A=A)):
            _close(g.compute(), want, 1e-12)
        with pytest.raises(ix.IndexDiffError, match="one block") as err:
            f(A=da.from_array(A, chunks=(3, 6)), x=x) if "x" in text else f(A=da.from_array(A, chunks=(3, 6)))
        name = text.split("(")[0].split()[-1]
        assert err.value.hint and "rechunk" in err.value.hint
        assert "^" in str(err.value) and name in str(err.value)
    # Values are checked where they are computed: a singular matrix fails the compute, as numpy's route fails.
    with pytest.raises(ix.IndexDiffError, match="singular"):
        ix.compile(ix.parse("x_i inv(A_ij) x_j"))(A=da.zeros((6, 6)), x=x).compute()


def test_operators_over_chunked_and_whole_axes(rng, da):
    import dask

    S = rng.normal(size=(3, 6))
    S[1] *= 1e4  # large logits: the stable forms on both routes
    exprs = [
        ix.parse(t) for t in ("softmax_j(S_ij)", "logsumexp_j(S_ij)", "mean_j(S_ij)", "max_j(S_ij)", "min_i(S_ij)")
    ]
    f = ix.compile(*exprs, *(ix.diff(e, "S") for e in exprs))
    want = f(S=S)
    for chunks in ((3, 4), (2, 6)):  # j chunked (dask's reductions), then i (numpy's implementations per block)
        got = dask.compute(*f(S=da.from_array(S, chunks=chunks)))
        for g, w in zip(got, want):
            assert np.all(np.isfinite(g))
            _close(g, w, 1e-12)


def test_custom_functions_run_on_dask_blocks(rng, da):
    x = rng.normal(size=10)
    with ix.function("cube", numpy=lambda a: a**3, derivative="3 u^2"):
        e = ix.parse("sum_i(cube(x_i))")
        f = ix.compile(e, ix.diff(e, "x"))
        value, grad = f(x=da.from_array(x, chunks=4))
        _close(value.compute(), np.sum(x**3), 1e-12)
        _close(grad.compute(), 3 * x**2, 1e-12)


def test_unknown_chunk_sizes_are_refused(da):
    x = da.ones(8, chunks=4)
    x = x[x > 0]  # shape (nan,)
    with pytest.raises(ix.IndexDiffError, match="unknown chunk sizes") as err:
        ix.compile(ix.parse("x_i x_i"))(x=x)
    assert "compute_chunk_sizes" in err.value.hint


def test_local_cluster_computes_the_same(rng, da):
    import dask

    distributed = pytest.importorskip("distributed")
    data = _logistic_data(rng)
    lazy = ix.compile(*LOGISTIC)(X=da.from_array(data["X"], chunks=(30, 6)), y=data["y"], w=data["w"])
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster),
    ):
        got = dask.compute(*lazy)
    for g, want in zip(got, _logistic_by_hand(**data)):
        _close(g, want, 1e-10)


def test_strided_blocks_reach_the_contractions_contiguous(rng, da):
    # X as columns of a wider block (X = data[:, :d], as read from one file) is a strided view per block, which
    # made BLAS about 3x slower; the plan's inputs are made contiguous per block, with the same values.
    from indexdiff.daskarrays import aligned

    data = _logistic_data(rng)
    wide = np.concatenate([data["X"], data["y"][:, None]], axis=1)
    D = da.from_array(wide, chunks=(40, -1))
    X, y = D[:, :-1], D[:, -1]

    def contiguous(a):  # what a task receives: each block's flag, as a (blocks, 1) array
        flags = a.map_blocks(lambda b: np.array([[b.flags.c_contiguous]]), chunks=((1,) * a.numblocks[0], (1,)))
        return flags.compute(scheduler="sync").ravel()

    assert not contiguous(X).any()
    out = aligned({"X": X, "y": y, "w": data["w"]}, [[("X", 0), ("y", 0)], [("X", 1), ("w", 0)]])
    assert contiguous(out["X"]).all()
    for got, want in zip(ix.compile(*LOGISTIC)(X=X, y=y, w=data["w"]), _logistic_by_hand(**data)):
        _close(got.compute(), want, 1e-10)
