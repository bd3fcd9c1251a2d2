"""Out of core: the logistic-regression loss, gradient and Hessian over X stored in chunks on disk, computed on a
local Dask cluster whose workers' memory limit is a quarter of X (at least 200 MiB), then a Newton step.

The cluster's workers write X (rows x cols, float64, the labels y as one more column) as .npy files of --chunk-rows
rows each into a temporary directory. ``ix.compile`` of the loss and its derivatives, called with the
chunked dask arrays (and w as a numpy array), returns a lazy graph: every chunk is read once, its share of the value,
gradient and Hessian ((X_c d_c)ᵀ X_c for the Hessian) is computed where it was read, and the shares are summed by a
tree. The same code runs on a real cluster with ``Client("scheduler-address")`` (the files on storage every worker
reads).

    python examples/out_of_core.py [--rows 500000] [--cols 32] [--chunk-rows 40000] [--workers 2]

The default is small, so that the example runs in seconds with the tests: X (122 MiB) is then smaller than the
workers' memory floor of 200 MiB. ``--rows 4000000`` (X of 977 MiB, limit 244 MiB per worker) is the out-of-core
case: about half a minute on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import indexdiff as ix

LOSS = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")


def write_chunk(path: Path, k: int, rows: int, cols: int) -> None:
    """Chunk ``k``: ``rows`` rows of X (an intercept column, features uniform with variance 1) with the label ±1,
    drawn from a logistic model, as the last column."""
    rng = np.random.default_rng([7, k])
    chunk = rng.random((rows, cols + 1))
    chunk -= 0.5
    chunk *= 12**0.5
    chunk[:, 0] = 1.0
    p = 1 / (1 + np.exp(-chunk[:, :cols] @ np.linspace(-1.0, 1.0, cols)))
    chunk[:, cols] = np.where(rng.uniform(size=rows) < p, 1.0, -1.0)
    np.save(path, chunk)


def stacked(paths: list[Path], rows: list[int], cols: int) -> da.Array:
    """The .npy files (``rows`` rows each) as one dask array: each chunk is one task that loads its file."""

    def load(block_id: tuple[int, int]) -> np.ndarray:
        return np.load(paths[block_id[0]])

    chunks = (tuple(rows), (cols,))
    return da.map_blocks(
        load, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)), name="load-" + dask.base.tokenize(*paths)
    )


def peak_memory() -> int:
    """This process's peak resident memory in bytes: Linux's VmHWM, which counts from the process's start (a
    spawned process's ru_maxrss starts at its parent's size), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def by_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    z = y * (X @ w)
    s = 1 / (1 + np.exp(z))
    return np.sum(np.logaddexp(0, -z)), -X.T @ (y * s), X.T @ (X * (s * (1 - s))[:, None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--cols", type=int, default=32)
    parser.add_argument("--chunk-rows", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows, cols, chunk = args.rows, args.cols, args.chunk_rows

    f = ix.compile(LOSS, ix.diff(LOSS, "w"), ix.diff(LOSS, "w", "w"))
    value_and_gradient = ix.compile(LOSS, ix.diff(LOSS, "w"))
    failures: list[str] = []
    x_bytes = rows * cols * 8
    # A quarter of X, but at least 200 MiB: a worker process alone takes about 80 MiB, and one pauses at 80% of its
    # limit (distributed's default) until its memory falls again.
    limit = max(x_bytes // 4, 200 * 2**20)
    sizes = [min(chunk, rows - s) for s in range(0, rows, chunk)]
    with (
        tempfile.TemporaryDirectory(prefix="indexdiff-out-of-core-") as tmp,
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, memory_limit=limit, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        print(f"cluster: {args.workers} workers, memory limit {limit / 2**20:.0f} MiB each (X / {x_bytes / limit:.1f})")
        print(f"dashboard: {client.dashboard_link}")
        if x_bytes < 4 * limit:
            print("  (X is less than 4 memory limits here: --rows 4000000 shows the out-of-core case)")
        start = time.perf_counter()
        paths = [Path(tmp) / f"chunk_{k:05d}.npy" for k in range(len(sizes))]
        client.gather(client.map(write_chunk, paths, range(len(sizes)), sizes, cols=cols))  # by the workers
        print(
            f"X: {rows:,} x {cols} float64 = {x_bytes / 2**20:,.0f} MiB in {len(paths)} .npy chunks of "
            f"{chunk * cols * 8 / 2**20:.1f} MiB, labels y in their last column "
            f"(written in {time.perf_counter() - start:.1f} s)"
        )
        data = stacked(paths, sizes, cols + 1)
        X, y = data[:, :cols], data[:, cols]

        w = np.zeros(cols)
        start = time.perf_counter()
        value, gradient, hessian = dask.compute(*f(X=X, y=y, w=w))
        seconds = time.perf_counter() - start
        print(f"value, gradient and Hessian at w = 0 in one pass: {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
        print(f"  loss {value:,.2f}  |gradient| {np.linalg.norm(gradient):.3e}")
        w_next = w - np.linalg.solve(hessian, gradient)
        value_next, gradient_next = dask.compute(*value_and_gradient(X=X, y=y, w=w_next))
        print(f"Newton step: loss {value_next:,.2f}  |gradient| {np.linalg.norm(gradient_next):.3e}")
        if not value_next < value:
            failures.append("the Newton step did not decrease the loss")

        # The cluster's result on the first two chunks against numpy on the same rows, loaded in memory.
        m = sum(sizes[:2])
        on_cluster = dask.compute(*f(X=X[:m], y=y[:m], w=w_next))
        rows_m = np.concatenate([np.load(p) for p in paths[:2]])
        for what, got, want in zip(
            ("value", "gradient", "Hessian"), on_cluster, by_hand(rows_m[:, :cols], rows_m[:, cols], w_next)
        ):
            err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
            print(f"  subsample of {m:,} rows, {what:<8} vs numpy in memory: relative difference {err:.1e}")
            if err > 1e-10:
                failures.append(f"the {what} on the subsample")

        for address, peak in sorted(client.run(peak_memory).items()):
            print(f"peak memory of worker {address}: {peak / 2**20:.0f} MiB (X is {x_bytes / 2**20:,.0f} MiB)")
            if peak > limit:
                failures.append(f"worker {address} went over its memory limit")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        raise SystemExit(1)
    print("value, gradient and Hessian on the cluster; the Newton step decreased the loss; subsample matches numpy")


if __name__ == "__main__":
    main()
