"""Logistic regression's value, gradient and Hessian over X in .npy chunks on disk, on a dask.distributed LocalCluster:
indexdiff compiled against the same computation written by hand in dask.array, and against numpy in memory where X
fits; throughput (rows/s), CPU seconds, peak memory per worker, and 1 against 2 workers.

    python benchmarks/dask_logistic.py [--rows 100000 1000000 10000000] [--max-rows N] [--workers 1 2] [--repeats 3]

(Not ``benchmarks/dask.py``: a script's directory comes first on sys.path, in the cluster's worker processes too,
so a file named dask.py would be imported in place of dask.) Every library runs one BLAS thread per worker; the
contenders are timed interleaved, and the results are compared before timing. X is float64 with --cols columns; the
largest X is at most 4 GB unless --max-rows allows more, and needs twice its size free on the temporary disk.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one BLAS thread, as every worker has

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import indexdiff as ix  # noqa: E402

LOSS = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
NUMPY_MAX_BYTES = 1 << 30  # numpy in memory up to 1 GiB of X


def write_chunk(path: Path, k: int, rows: int, cols: int) -> None:
    """``rows`` rows of X (uniform features, an intercept column) and the labels ±1 as the last column."""
    rng = np.random.default_rng([11, k])
    chunk = rng.random((rows, cols + 1))
    chunk -= 0.5
    chunk[:, 0] = 1.0
    chunk[:, cols] = np.where(rng.random(rows) < 1 / (1 + np.exp(-chunk[:, :cols].sum(axis=1))), 1.0, -1.0)
    np.save(path, chunk)


def stacked(paths: list[Path], rows: list[int], cols: int) -> da.Array:
    def load(block_id: tuple[int, int]) -> np.ndarray:
        return np.load(paths[block_id[0]])

    return da.map_blocks(
        load,
        chunks=(tuple(rows), (cols,)),
        dtype=np.float64,
        meta=np.empty((0, 0)),
        name="load-" + dask.base.tokenize(*paths),
    )


def by_hand_dask(X: da.Array, y: da.Array, w: np.ndarray) -> tuple[da.Array, ...]:
    """What one writes in dask.array: the numpy formulas on dask arrays."""
    z = y * (X @ w)
    s = 1 / (1 + da.exp(z))  # sigmoid(-z)
    return da.logaddexp(0, -z).sum(), -(X.T @ (y * s)), X.T @ (X * (s * (1 - s))[:, None])


def by_hand_numpy(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    z = y * (X @ w)
    s = 1 / (1 + np.exp(z))
    return np.sum(np.logaddexp(0, -z)), -(X.T @ (y * s)), X.T @ (X * (s * (1 - s))[:, None])


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


def timed(client: Client, run: object) -> tuple[float, float]:
    """Wall seconds and CPU seconds (workers and this process, which runs the scheduler) of ``run()``."""
    before = client.run(cpu_seconds)
    mine = cpu_seconds()
    start = time.perf_counter()
    run()  # type: ignore[operator]
    wall = time.perf_counter() - start
    after = client.run(cpu_seconds)
    return wall, cpu_seconds() - mine + sum(after[k] - before[k] for k in before)


def agree(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], what: str) -> None:
    for u, v in zip(a, b):
        if not np.allclose(u, v, rtol=1e-9, atol=1e-9 * float(np.max(np.abs(v)))):
            raise SystemExit(f"{what}: results differ")


def run_size(rows: int, args: argparse.Namespace, tmp: Path, f: ix.Compiled) -> list[dict[str, object]]:
    cols, chunk = args.cols, args.chunk_rows
    sizes = [min(chunk, rows - s) for s in range(0, rows, chunk)]
    paths = [tmp / f"chunk_{k:05d}.npy" for k in range(len(sizes))]
    w = np.random.default_rng(0).normal(size=cols) * 0.1
    results = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, silence_logs=logging.ERROR, dashboard_address=":0") as cluster,
        Client(cluster) as c,
    ):
        c.gather(c.map(write_chunk, paths, range(len(sizes)), sizes, cols=cols))
    data = stacked(paths, sizes, cols + 1)
    X, y = data[:, :cols], data[:, cols]
    x_bytes = rows * cols * 8
    numpy_rate = None
    if x_bytes <= NUMPY_MAX_BYTES:
        block = np.concatenate([np.load(p) for p in paths])
        Xn, yn = np.ascontiguousarray(block[:, :cols]), block[:, cols].copy()
        del block
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reference = by_hand_numpy(Xn, yn, w)
            times.append(time.perf_counter() - start)
        numpy_rate = rows / statistics.median(times)
        del Xn, yn
    for workers in args.workers:
        load_before = os.getloadavg()[0]
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, silence_logs=logging.ERROR, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            ours = dask.compute(*f(X=X, y=y, w=w))
            theirs = dask.compute(*by_hand_dask(X, y, w))
            agree(ours, theirs, f"{rows} rows")
            if numpy_rate is not None:
                agree(ours, reference, f"{rows} rows, numpy")
            measured: dict[str, list[tuple[float, float]]] = {"ix": [], "hand": []}
            for _ in range(args.repeats):  # interleaved
                measured["ix"].append(timed(client, lambda: dask.compute(*f(X=X, y=y, w=w))))
                measured["hand"].append(timed(client, lambda: dask.compute(*by_hand_dask(X, y, w))))
            peaks = client.run(peak_memory)
        median = {
            k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in measured.items()
        }
        spread = {k: max(t[0] for t in v) / min(t[0] for t in v) for k, v in measured.items()}
        results.append(
            {
                "rows": rows,
                "workers": workers,
                "ix": rows / median["ix"][0],
                "hand": rows / median["hand"][0],
                "wall ratio": median["ix"][0] / median["hand"][0],
                "cpu ratio": median["ix"][1] / median["hand"][1],
                "spread": max(spread.values()),
                "numpy": numpy_rate,
                "peak MiB": max(peaks.values()) / 2**20,
                "load": (load_before + os.getloadavg()[0]) / 2,
            }
        )
        print_row(results[-1], x_bytes)
    for p in paths:
        p.unlink()
    return results


def print_row(r: dict[str, object], x_bytes: int) -> None:
    numpy = f"{r['numpy']:>12,.0f}" if r["numpy"] is not None else f"{'(no)':>12}"
    print(
        f"{r['rows']:>11,} {x_bytes / 2**30:>6.2f} {r['workers']:>7} {r['ix']:>12,.0f} {r['hand']:>12,.0f} "
        f"{r['wall ratio']:>8.2f} {r['cpu ratio']:>8.2f} {r['spread']:>7.2f} {numpy} {r['peak MiB']:>9.0f} "
        f"{r['load']:>5.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--max-rows", type=int, default=None, help="allow X above 4 GB up to this many rows")
    parser.add_argument("--cols", type=int, default=32)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    limit = args.max_rows if args.max_rows is not None else (4 * 10**9) // ((args.cols + 1) * 8)
    rows = [n for n in args.rows if n <= limit]
    if len(rows) < len(args.rows):
        print(f"skipping sizes above {limit:,} rows (X over 4 GB on disk; --max-rows allows more)")
    tmp = Path(tempfile.mkdtemp(prefix="indexdiff-dask-bench-"))
    need = 2 * max(rows) * (args.cols + 1) * 8
    free = shutil.disk_usage(tmp).free
    if need > free:
        raise SystemExit(f"{tmp}: {free / 2**30:.1f} GiB free, the largest X needs {need / 2**30:.1f} GiB")
    f = ix.compile(LOSS, ix.diff(LOSS, "w"), ix.diff(LOSS, "w", "w"))
    print(f"X: float64, {args.cols} columns, chunks of {args.chunk_rows:,} rows; {os.cpu_count()} cores")
    print("rows/s: value + gradient + Hessian, median of the interleaved repeats; ratios: indexdiff / by hand")
    print(
        f"{'rows':>11} {'X GiB':>6} {'workers':>7} {'indexdiff':>12} {'dask, hand':>12} {'wall x':>8} {'cpu x':>8} "
        f"{'spread':>7} {'numpy mem.':>12} {'peak MiB':>9} {'load':>5}"
    )
    results = []
    try:
        for n in rows:
            results += run_size(n, args, tmp, f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    by = {(r["rows"], r["workers"]): r for r in results}
    if 1 in args.workers and 2 in args.workers:
        for n in rows:
            one, two = by[(n, 1)], by[(n, 2)]
            print(
                f"{n:>11,} rows: 2 workers / 1 worker throughput: indexdiff {two['ix'] / one['ix']:.2f}x, "
                f"by hand {two['hand'] / one['hand']:.2f}x"
            )


if __name__ == "__main__":
    main()
