"""Growth of the symbolic work with the size of the input: for each series, the time at each size and the exponent p
of time ∝ size^p (least squares on log-log), with PASS when p <= 1.2.

    python benchmarks/scaling.py            # the full run (about two minutes)
    python benchmarks/scaling.py --quick    # smaller sizes

Times are CPU seconds of this process. Every measurement parses the input again: nodes cache their own results
(derivatives, simplified forms), so timing a second call on the same parsed expression would measure the cache.

Series:
- sum: parse + ∂/∂x of an n-term sum ``c0 x_i x_i + c1 x_i x_i + ...`` (distinct terms, and terms repeating ten
  coefficients, which merge).
- product: parse + ∂/∂x of ``x_i y_i c1 c2 ... cn`` (one long product).
- tanh²: parse + ∂²/∂x² of ``tanh(tanh(...tanh(x)...))`` nested n deep. The simplified result is a sum of n
  products of up to n factors, so its size (distinct nodes plus their edges, shared subtrees counted once) grows
  like n²: the exponent is fitted against that size; the exponent in n is printed beside it.
- programs, through the public API: a residual network of n layers, each using the previous layer twice
  (``h{k}_i = tanh(W{k}_ij h{k-1}_j) + h{k-1}_i``, ``L = sum_i(h{n}_i h{n}_i)``) through ``ix.diff`` (by W1),
  ``ix.check`` (small dims), ``ix.cost`` and ``ix.codegen(format="einsum")``; and chains
  ``a{k} = a{k-1} a{k-1} + a{k-1}`` through ``ix.diff``. A series that fails prints the error instead.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import indexdiff as ix
from indexdiff.expr import Node
from indexdiff.names import children

LIMIT = 1.2


def exponent(sizes: list[float], times: list[float]) -> float:
    """p in time ∝ size^p, by least squares on log-log."""
    slope, _ = np.polyfit([math.log(s) for s in sizes], [math.log(t) for t in times], 1)
    return float(slope)


def dag_size(node: Node) -> int:
    """Distinct nodes plus the edges between them (a shared subtree counted once)."""
    seen: set[int] = set()
    stack, size = [node], 0
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        parts = children(n)
        size += 1 + len(parts)
        stack.extend(parts)
    return size


def sum_text(n: int, repeated: bool) -> str:
    return " + ".join(f"c{k % 10 if repeated else k} x_i x_i" for k in range(n))


def product_text(n: int) -> str:
    return "x_i y_i " + " ".join(f"c{k}" for k in range(n))


def tanh_text(n: int) -> str:
    return "tanh(" * n + "x" + ")" * n


def resnet_text(n: int) -> str:
    lines = [f"h{k}_i = tanh(W{k}_ij h{k - 1}_j) + h{k - 1}_i" for k in range(1, n + 1)]
    return "\n".join([*lines, f"L = sum_i(h{n}_i h{n}_i)"])


def chain_text(n: int) -> str:
    return "\n".join(f"a{k} = a{k - 1} a{k - 1} + a{k - 1}" for k in range(1, n + 1))


def timed(prepare: Callable[[], Any], run: Callable[[Any], object], seconds: float = 0.5) -> float:
    """CPU milliseconds of ``run(prepare())``, ``prepare`` untimed: the median of three when one is quick.

    CPU time of this process, so that other processes on a busy machine do not show up as growth.
    """
    times: list[float] = []
    while len(times) < 3 and (not times or times[0] < seconds):
        made = prepare()
        start = time.process_time()
        run(made)
        times.append(time.process_time() - start)
    return statistics.median(times) * 1e3


def series(
    label: str,
    sizes: list[int],
    run: Callable[[Any], object],
    prepare: Callable[[int], Any] = lambda n: n,
    measure: Callable[[int], float] | None = None,
) -> float | None:
    """Time ``run(prepare(n))`` at each size; print the times and the fitted exponent (against ``measure(n)``)."""
    times: list[float] = []
    try:
        for n in sizes:
            times.append(timed(lambda n=n: prepare(n), run))
    except Exception as err:  # a series that fails reports the failure and the others still run
        print(f"{label:<36} FAILED at n={sizes[len(times)]}: {type(err).__name__}: {str(err).splitlines()[0][:90]}")
        return None
    measured = [measure(n) for n in sizes] if measure else [float(n) for n in sizes]
    p = exponent(measured, times)
    cells = "  ".join(f"{n}: {t / 1e3:.3f}s" for n, t in zip(sizes, times))
    note = "" if measure is None else f" (in n: p = {exponent([float(n) for n in sizes], times):.2f})"
    verdict = "PASS" if p <= LIMIT else "FAIL"
    print(f"{label:<36} {cells}  ->  p = {p:.2f} {verdict}{note}", flush=True)
    return p


def tanh_second(n: int) -> ix.Expr:
    return ix.diff(ix.parse(tanh_text(n)), "x", "x")


def resnet(n: int) -> ix.Program:
    return ix.parse(resnet_text(n))


SMALL = {"i": 2, "j": 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    args = parser.parse_args()
    q = args.quick
    sums = [250, 500, 1000, 2000] if q else [1000, 2500, 5000, 10000]
    tanhs = [10, 20, 40] if q else [10, 20, 40, 80]
    layers = [4, 8, 16] if q else [8, 16, 32, 64]
    chains = [8, 16, 32] if q else [16, 32, 64, 128]

    print(f"growth exponents (time ∝ size^p, PASS when p <= {LIMIT}){' --quick' if q else ''}")
    parse = ix.parse
    results = [
        series("sum, distinct: parse + d/dx", sums, lambda n: ix.diff(parse(sum_text(n, False)), "x")),
        series("sum, distinct: d/dx", sums, lambda e: ix.diff(e, "x"), lambda n: parse(sum_text(n, False))),
        series("sum, repeated: parse + d/dx", sums, lambda n: ix.diff(parse(sum_text(n, True)), "x")),
        series("product: parse + d/dx", sums, lambda n: ix.diff(parse(product_text(n)), "x")),
        series("tanh nested n: parse + d2/dx2", tanhs, tanh_second, measure=lambda n: dag_size(tanh_second(n).node)),
        series("resnet n layers: ix.diff by W1", layers, lambda p: ix.diff(p, "W1"), resnet),
        series("resnet n layers: ix.check by W1", layers, lambda p: ix.check(p, "W1", dims=SMALL), resnet),
        series("resnet n layers: ix.cost", layers, lambda p: ix.cost(p, {"i": 100, "j": 100}), resnet),
        series("resnet n layers: codegen einsum", layers, lambda p: ix.codegen(p, "W1", format="einsum"), resnet),
        series("a{k} chain of n: ix.diff by a0", chains, lambda p: ix.diff(p, "a0"), lambda n: parse(chain_text(n))),
    ]
    failed = [p for p in results if p is None or p > LIMIT]
    print(f"{len(results) - len(failed)} of {len(results)} series PASS")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
