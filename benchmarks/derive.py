"""Deriving a gradient program: parse + ``ix.grad`` of an n-layer network, against n.

    python benchmarks/derive.py [--runs N] [--depths 10,50,200]

The network is benchmarks/mlp.py's ``deep(n)``: ``h{k+1}_bi = relu(W{k}_ij h{k}_bj + c{k}_i)`` for k < n, then
``L = sum_bi((h{n}_bi - y_bi)^2)``, differentiated by every W. Each timing is a fresh process (nothing cached from
an earlier run; imports not included), median of N; wall seconds of the parse and of the derivation are printed
separately, then their CPU seconds (steadier than wall time on a busy machine) and the wall time per layer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from mlp import deep

_CHILD = """
import json, sys, time
import indexdiff as ix
text, wrt = sys.argv[1], sys.argv[2].split(",")
start, cpu = time.perf_counter(), time.process_time()
program = ix.parse(text)
parsed = time.perf_counter()
gradient = ix.grad(program, wrt=wrt)
done = time.perf_counter()
print(json.dumps([parsed - start, done - parsed, time.process_time() - cpu, len(gradient.statements)]))
"""


def once(depth: int) -> tuple[float, float, float, int]:
    """Wall seconds to parse and to derive the ``depth``-layer network in a fresh process, CPU seconds of both,
    and the statement count."""
    wrt = ",".join(f"W{k}" for k in range(depth))
    out = subprocess.run([sys.executable, "-c", _CHILD, deep(depth), wrt], capture_output=True, text=True, check=True)
    parse, derive, cpu, statements = json.loads(out.stdout)
    return parse, derive, cpu, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per depth (default 7)")
    parser.add_argument("--depths", default="10,50,100,200", help="comma-separated layer counts")
    args = parser.parse_args()
    print(f"parse + ix.grad of the n-layer network (benchmarks/mlp.py deep(n)), median of {args.runs} fresh processes")
    print("| layers | statements | parse (s) | ix.grad (s) | parse + ix.grad (s) | CPU (s) | ms per layer |")
    print("|---|---|---|---|---|---|---|")
    for depth in (int(d) for d in args.depths.split(",")):
        runs = [once(depth) for _ in range(max(args.runs, 1))]
        parse = statistics.median(r[0] for r in runs)
        derive = statistics.median(r[1] for r in runs)
        total = statistics.median(r[0] + r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(
            f"| {depth} | {runs[0][3]} | {parse:.3f} | {derive:.3f} | {total:.3f} | {cpu:.3f} | "
            f"{total / depth * 1e3:.2f} |"
        )


if __name__ == "__main__":
    main()
