"""Generated Python modules (``ix.codegen(..., format="python")``) against ix.compile and numpy by hand, in one run:
the logistic-regression loss's value, gradient and Hessian (X 2000×50 and 2000×500, float64) and the MLP of
benchmarks/mlp.py (its gradient program; float32). Median CPU time of interleaved rounds; results compared first.

OPENBLAS_NUM_THREADS=1 python benchmarks/modules.py"""

import argparse
import time

import numpy as np
from _timing import interleaved
from mlp import NET, WRT, by_hand

import indexdiff as ix

LOSS = "sum_i(log(1 + exp(-y_i X_ij w_j)))"


def module(code: str) -> dict:
    namespace: dict = {"__name__": "generated"}
    exec(compile(code, "generated", "exec"), namespace)  # noqa: S102 - the generated module under test
    return namespace


def logistic_by_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple:
    m = y * (X @ w)
    s = 1 / (1 + np.exp(m))  # sigmoid(-m)
    return np.sum(np.logaddexp(0, -m)), -(X.T @ (y * s)), (X.T * (s * (1 - s))) @ X


def table(title: str, contenders: dict, repeats: int) -> None:
    results = [fn() for fn in contenders.values()]
    for got in results[1:]:
        for g, w in zip(got, results[0]):
            assert np.allclose(g, w, rtol=1e-3, atol=1e-4), title
    ms = interleaved(contenders, repeats, clock=time.process_time)
    base = next(iter(ms.values()))
    print(f"\n{title}\n\n| what | median CPU (ms) | × numpy by hand |\n|---|---|---|")
    for what, t in ms.items():
        print(f"| {what} | {t:.2f} | {t / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    e = ix.parse(LOSS)
    generated = module(ix.codegen(e, "w", "w,w"))["evaluate"]
    compiled = ix.compile(e, ix.diff(e, "w"), ix.diff(e, "w", "w"))
    for n, d in ((2000, 50), (2000, 500)):
        a = {"X": rng.normal(size=(n, d)), "y": rng.choice([-1.0, 1.0], n), "w": rng.normal(size=d) * 0.05}
        table(
            f"logistic loss: value, gradient and Hessian, X {n}×{d} float64, median of {args.repeats}",
            {
                "numpy by hand": lambda a=a: logistic_by_hand(**a),
                "generated module": lambda a=a: generated(**a),
                "ix.compile": lambda a=a: compiled(**a),
            },
            args.repeats,
        )
    program = ix.parse(NET)
    generated = module(ix.codegen(program, *WRT))["gradients"]
    compiled = ix.compile(ix.grad(program, wrt=WRT))
    sizes = [(512, 784), (512, 512), (10, 512)]
    a = {}
    for k, (n_out, n_in) in enumerate(sizes, start=1):
        a[f"W{k}"] = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        a[f"b{k}"] = np.zeros(n_out, dtype=np.float32)
    a["x"] = rng.normal(size=(256, 784)).astype(np.float32)
    a["y"] = rng.uniform(size=(256, 10)).astype(np.float32)
    order = ("W1", "b1", "W2", "b2", "W3", "b3", "x", "y")
    table(
        f"MLP 784-512-512-10, batch 256, float32: loss and six gradients, median of {args.repeats}",
        {
            "numpy by hand": lambda: by_hand(*(a[n] for n in order)),
            "generated module": lambda: generated(**a),
            "ix.compile": lambda: compiled(**a),
        },
        args.repeats,
    )


if __name__ == "__main__":
    main()
