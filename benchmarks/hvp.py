"""Hessian-vector product of the logistic-regression loss (X 20000×2000): indexdiff's compiled
``ix.diff(loss, "w", "w", along="v")`` against numpy by hand and ``jax.jit`` of ``jax.jvp(jax.grad(f))``, in one run.

numpy by hand is what a competent person writes: ``p = sigmoid(y z); X.T @ (p (1 - p) (X @ v))`` (labels ±1, so
y² = 1 is dropped), never forming the 2000×2000 Hessian. Every contender runs on one thread (the machine is shared:
``OPENBLAS_NUM_THREADS=1`` and XLA's single-threaded CPU client unless set otherwise), is checked against numpy
first, and is timed interleaved (one call of each per round). The figures are the median CPU time of the process
(all its threads: XLA runs on its own), steadier than wall time on a loaded machine; wall times are printed too.
JAX is skipped when not installed.

    python benchmarks/hvp.py [--n 20000] [--d 2000] [--repeats 15] [--dtype float64|float32|both]
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import indexdiff as ix  # noqa: E402

LOSS = "sum_i(log(1 + exp(-y_i X_ij w_j)))"


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Median (process CPU, wall) milliseconds of each function, in interleaved rounds after two warm-up calls."""
    for fn in fns.values():
        fn()
        fn()
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - t)
    return {k: (statistics.median(cpu[k]) * 1e3, statistics.median(wall[k]) * 1e3) for k in fns}


def run(n: int, d: int, dtype: type, repeats: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = np.sign(rng.normal(size=n)).astype(dtype)
    w = (rng.normal(size=d) / np.sqrt(d)).astype(dtype)
    v = rng.normal(size=d).astype(dtype)

    def by_hand() -> np.ndarray:
        p = 1 / (1 + np.exp(-y * (X @ w)))
        return X.T @ (p * (1 - p) * (X @ v))

    hvp = ix.compile(ix.diff(ix.parse(LOSS), "w", "w", along="v"))
    want = by_hand()
    tolerance = 1e-10 if dtype == np.float64 else 2e-4
    got = hvp(X=X, y=y, w=w, v=v)
    assert got.dtype == dtype and np.allclose(got, want, rtol=tolerance, atol=tolerance * np.abs(want).max())
    fns: dict[str, Callable[[], object]] = {
        "numpy by hand": by_hand,
        "indexdiff compiled": lambda: hvp(X=X, y=y, w=w, v=v),
    }
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def loss(w_: jnp.ndarray, X_: jnp.ndarray, y_: jnp.ndarray) -> jnp.ndarray:
            return jnp.sum(jnp.logaddexp(0.0, -y_ * (X_ @ w_)))

        jhvp = jax.jit(lambda w_, v_, X_, y_: jax.jvp(lambda u: jax.grad(loss)(u, X_, y_), (w_,), (v_,))[1])
        Xj, yj, wj, vj = (jnp.asarray(a) for a in (X, y, w, v))
        got = np.asarray(jhvp(wj, vj, Xj, yj))
        assert np.allclose(got, want, rtol=tolerance, atol=tolerance * np.abs(want).max()), "jax disagrees"
        fns["jax.jit(jax.jvp(jax.grad(f)))"] = lambda: jhvp(wj, vj, Xj, yj).block_until_ready()
    except ImportError:
        print("(jax is not installed: pip install -e '.[bench]')")
    times = timed(fns, repeats)
    hand_cpu, hand_wall = times["numpy by hand"]
    print(f"\nHVP, X {n}×{d} {np.dtype(dtype).name}, median of {repeats} (one thread)")
    print(f"{'what':<34} {'CPU ms':>8} {'× numpy':>8} {'wall ms':>8} {'× numpy':>8}")
    for name, (c, t) in times.items():
        print(f"{name:<34} {c:>8.1f} {c / hand_cpu:>8.2f} {t:>8.1f} {t / hand_wall:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    args = parser.parse_args()
    print(f"HVP: {ix.diff(ix.parse(LOSS), 'w', 'w', along='v')}")
    for name in ("float64", "float32") if args.dtype == "both" else (args.dtype,):
        run(args.n, args.d, getattr(np, name), args.repeats)


if __name__ == "__main__":
    main()
