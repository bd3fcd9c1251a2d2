"""The command line's arguments: the flags, their help and the examples ``indexdiff --help`` prints."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import IndexDiffError

__all__ = ["EXAMPLES", "parser"]

EXAMPLES = """\
examples:
  indexdiff "x_i A_ij x_j" --wrt x            gradient: A_ik x_i + A_kj x_j
  indexdiff "x_i A_ij x_j" --wrt A            x_k x_l
  indexdiff "x_i A_ij x_j" --wrt x,x          Hessian: A_kl + A_lk
  indexdiff "x_i A_ij x_j" --wrt x,x --along v    Hessian-vector product, no Hessian formed
  indexdiff "exp(a)" --taylor 2 --wrt a       Taylor polynomial: exp(a) + h exp(a) + 0.5 h^2 exp(a)
  indexdiff "x_i A_ij x_j" --wrt x --wrt A    two derivatives, one per line
  indexdiff "W_ij x_j + b_i" --wrt W_kl       name the new indices yourself
  indexdiff "sum_i(log(1 + exp(-y_i X_ij w_j)))" --wrt w --check --dims i=50,j=4
  indexdiff "sum_i(log(1 + exp(-y_i X_ij w_j)))" --wrt w,w --cost --dims i=2000,j=500
  indexdiff -f net.idx --wrt W1 --wrt b1      a program: prints its backward pass (reverse mode)
  indexdiff "x_i A_ij x_j" --wrt x,x --format python > quad.py && python quad.py   code that checks itself
  indexdiff "x_i A_ij x_j" --wrt x --check --data arrays.npz    check at your own arrays (np.savez)
  indexdiff serve                              the playground page: http://127.0.0.1:8765/

notation: juxtaposition sums an index that occurs twice in a product (x_i A_ij x_j);
z_i = ... binds i (element-wise); sum_i(...) sums explicitly; functions and ^ are element-wise.
exit status: 0 success, 1 a failed --check (a wrong derivative, or a value not finite at the data),
2 bad input (also: out of memory), 130 interrupted.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # argparse's errors are bad input too
        self.print_usage(sys.stderr)
        hint = "see indexdiff --help"
        if "unrecognized arguments: -" in message and "unrecognized arguments: --" not in message:
            hint = "an expression that starts with '-' goes after '--': indexdiff --wrt x -- '-x_i y_i'"
        raise IndexDiffError(message, hint=hint)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="indexdiff",
        description="Differentiate tensor expressions in index notation (Einstein convention).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("expression", nargs="?", help='an expression or statement, e.g. "x_i A_ij x_j"')
    p.add_argument("-f", "--file", help="read a program (or one expression) from FILE; - reads stdin")
    p.add_argument(
        "--wrt",
        action="append",
        default=[],
        metavar="VARS",
        help="differentiate by VARS: x, x_k, or a comma list x,x for repeated differentiation; "
        "repeat --wrt for several derivatives",
    )
    p.add_argument("--loss", metavar="NAME", help="the loss statement of a program (default: the last)")
    p.add_argument("--steps", action="store_true", help="show each derivative one named rule per step (index, latex)")
    p.add_argument("--label", action="store_true", help="write each derivative as ∂f/∂x_k = ... (default: bare)")
    p.add_argument(
        "--along",
        action="append",
        default=[],
        metavar="V",
        help="contract each --wrt chain's last derivative with a new tensor V (a directional derivative; --wrt w,w "
        "--along v is the Hessian-vector product), or each with V=u,v; once, or once per --wrt; with --taylor, "
        "the step's name (default h)",
    )
    p.add_argument(
        "--taylor", type=int, metavar="N", help="print the Taylor polynomial of order N in the --wrt variable"
    )
    p.add_argument(
        "--format",
        choices=("index", "einsum", "python", "latex", "json", "matrix", "latex-matrix", "numpy"),
        default="index",
        help="index notation (default), numpy einsum code, a standalone Python module that checks itself when run, "
        "LaTeX, JSON, or matrix notation: text (matrix), LaTeX (latex-matrix) or NumPy functions (numpy)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="verify each derivative against central differences on random data scaled so that each "
        "contraction is of order 1 (or on --data); exit 1 on failure",
    )
    p.add_argument(
        "--cost",
        action="store_true",
        help="print the FLOPs and largest intermediate of the value and each derivative (needs --dims)",
    )
    p.add_argument(
        "--dims",
        action="append",
        default=[],
        metavar="i=3,j=4",
        help="index sizes for --check and --cost; repeat --dims to add more (an index given two different sizes "
        "is an error, and so is an index the expression does not use)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for --check (an integer >= 0, default 0)")
    p.add_argument(
        "--data",
        metavar="FILE.npz",
        help="--check at these arrays (np.savez(FILE, x=x, A=A): one array per tensor) instead of random data",
    )
    p.add_argument(
        "--symmetric",
        action="append",
        default=[],
        metavar="S",
        help="declare two-index tensors symmetric (S_ij = S_ji; a comma list, or repeat the flag): results are "
        "simplified with it, the derivative by S is (G + Gᵀ)/2, and --check uses symmetric S",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="read the expression as matrix notation (x' A x; a-g scalars, h-z vectors, A-Z matrices) and print "
        "its index notation first",
    )
    p.add_argument("--shapes", metavar="b=vector,W=matrix", help="with --matrix: names' shapes (scalar|vector|matrix)")
    p.add_argument("--version", action="version", version=f"indexdiff {__version__}")
    return p
