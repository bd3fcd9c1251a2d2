"""The command line: differentiate index notation, print it as index notation, einsum code or JSON, check it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .check import _shapes, check
from .codegen import codegen, einsum_text
from .cost import Cost, cost
from .diff import diff
from .errors import IndexDiffError
from .expr import Expr, Program
from .parser import parse
from .program import inline
from .reverse import grad

__all__ = ["main"]

EXAMPLES = """\
examples:
  indexdiff "x_i A_ij x_j" --wrt x            gradient: A_ik x_i + A_kj x_j
  indexdiff "x_i A_ij x_j" --wrt A            x_k x_l
  indexdiff "x_i A_ij x_j" --wrt x,x          Hessian: A_kl + A_lk
  indexdiff "x_i A_ij x_j" --wrt x --wrt A    two derivatives, one per line
  indexdiff "W_ij x_j + b_i" --wrt W_kl       name the new indices yourself
  indexdiff "sum_i(log(1 + exp(-y_i X_ij w_j)))" --wrt w --check --dims i=50,j=4
  indexdiff "sum_i(log(1 + exp(-y_i X_ij w_j)))" --wrt w,w --cost --dims i=2000,j=500
  indexdiff -f net.idx --wrt W1 --wrt b1      a program: prints its backward pass (reverse mode)
  indexdiff "x_i A_ij x_j" --wrt x,x --format python > quad.py && python quad.py   code that checks itself

notation: juxtaposition sums an index that occurs twice in a product (x_i A_ij x_j);
z_i = ... binds i (element-wise); sum_i(...) sums explicitly; functions and ^ are element-wise.
exit status: 0 success, 1 a failed --check, 2 bad input.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: exit 2 with usage, as for bad input
        self.print_usage(sys.stderr)
        self.exit(2, f"indexdiff: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
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
    p.add_argument(
        "--format",
        choices=("index", "einsum", "python", "latex", "json"),
        default="index",
        help="index notation (default), numpy einsum code, a standalone Python module that checks itself when run, "
        "LaTeX, or JSON",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="verify each derivative against central differences on random data; exit 1 on failure",
    )
    p.add_argument(
        "--cost",
        action="store_true",
        help="print the FLOPs and largest intermediate of the value and each derivative (needs --dims)",
    )
    p.add_argument("--dims", default="", metavar="i=3,j=4", help="index sizes for --check and --cost")
    p.add_argument("--seed", type=int, default=0, help="random seed for --check (default 0)")
    p.add_argument("--version", action="version", version="indexdiff 0.1.0")
    return p


def split_specs(text: str) -> list[str]:
    """``"x,A_{k,l}"`` -> ``["x", "A_{k,l}"]``: commas inside braces belong to the indices."""
    parts, depth, current = [], 0, ""
    for c in text:
        depth += c == "{"
        depth -= c == "}"
        if c == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += c
    parts.append(current.strip())
    for k, part in enumerate(parts):
        if not part:
            at = sum(len(p) + 1 for p in parts[:k])
            raise IndexDiffError("empty variable name in --wrt", text, at, hint="write --wrt x or --wrt x,x")
    return parts


def parse_dims(text: str) -> dict[str, int]:
    """``"i=3,j=4"`` -> ``{"i": 3, "j": 4}``."""
    dims: dict[str, int] = {}
    pos = 0
    for part in text.split(","):
        name, eq, value = (p.strip() for p in part.partition("="))
        if part.strip():
            if not eq or not name or not value.isdigit() or not 1 <= int(value) <= 10**7:
                raise IndexDiffError(
                    f"bad size {part.strip()!r} in --dims",
                    text,
                    pos,
                    pos + len(part),
                    hint="write --dims i=3,j=4 (each index a size from 1 to 10000000)",
                )
            if name in dims:
                raise IndexDiffError(
                    f"index '{name}' is given twice in --dims",
                    text,
                    pos,
                    pos + len(part),
                    hint="give each index one size",
                )
            dims[name] = int(value)
        pos += len(part) + 1
    return dims


def _with_origins(e: Expr, original: Expr, dims: dict[str, int]) -> dict[str, int]:
    """``dims`` plus the sizes of a derivative's new indices, read off the variables' axes in ``original``."""
    shapes, _ = _shapes(original, dims, defaults=False)
    extra = {i: shapes[t][axis] for i, (t, axis) in e.origins.items() if t in shapes and i not in dims}
    return {**dims, **extra}


def cost_table(labels: list[str], costs: list[Cost], dims: dict[str, int]) -> str:
    """The --cost table."""
    head = "cost (" + ", ".join(f"{i}={n}" for i, n in dims.items()) + ")"
    width = max(len(head), *(len(label) for label in labels))
    lines = [f"{head:<{width}}  {'FLOPs':>10}  {'naive FLOPs':>11}  {'largest intermediate':>20}  contractions"]
    for label, c in zip(labels, costs):
        lines.append(
            f"{label:<{width}}  {c.flops:>10.3g}  {c.naive_flops:>11.3g}  {c.largest_intermediate:>20,}  "
            f"{c.contractions:>12}"
        )
    return "\n".join(lines)


def _read(args: argparse.Namespace) -> tuple[str, Expr | Program]:
    if args.file is not None and args.expression is not None:
        raise IndexDiffError("give an expression or -f FILE, not both", hint="drop one of them")
    if args.file is not None:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(args.file, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as err:
                raise IndexDiffError(f"cannot read {args.file}: {err.strerror}", hint="check the file name") from None
    elif args.expression is not None:
        text = args.expression
    else:
        raise IndexDiffError("no expression given", hint='try: indexdiff "x_i A_ij x_j" --wrt x')
    return text, parse(text)


def _render(expr: Expr, fmt: str) -> str:
    return einsum_text(expr) if fmt == "einsum" else str(expr)


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    text, parsed = _read(args)
    dims = parse_dims(args.dims)
    if args.loss is not None and not isinstance(parsed, Program):
        raise IndexDiffError("--loss names a statement of a program", hint="use it with -f FILE holding statements")
    expr = inline(parsed, args.loss) if isinstance(parsed, Program) else parsed
    chains = [split_specs(w) for w in args.wrt]
    program_gradient = isinstance(parsed, Program) and chains and args.format in ("index", "python")
    derivatives = [] if program_gradient and not (args.check or args.cost) else [diff(expr, *c) for c in chains]
    reports = [check(expr, *chain, dims=dims, seed=args.seed) for chain in chains] if args.check else []
    labels = ["value", *(f"d/d{'/d'.join(chain)}" for chain in chains[: len(derivatives)])]
    costs = [cost(e, _with_origins(e, expr, dims)) for e in (expr, *derivatives)] if args.cost else []
    if isinstance(parsed, Program) and chains and args.format == "index":
        # A program's gradients: the backward pass as statements (reverse mode).
        for chain in chains:
            if len(chain) > 1:
                raise IndexDiffError(
                    f"a program's gradient takes one variable per --wrt, not {','.join(chain)}",
                    ",".join(chain),
                    hint="repeat --wrt for several gradients: --wrt W1 --wrt b1",
                )
        print(grad(parsed, args.loss, [c[0].split("_")[0] for c in chains]))
    elif isinstance(parsed, Program) and chains and args.format == "python":
        print(codegen(parsed, *(c[0] for c in chains), format="python", loss=args.loss))
    elif args.format in ("python", "latex"):
        print(codegen(expr, *(",".join(c) for c in chains), format=args.format))
    elif args.format == "json":
        out = {
            "input": text,
            "free": list(expr.free),
            "index": str(parsed),
            "derivatives": [
                {"wrt": ",".join(chain), "free": list(d.free), "index": str(d), "einsum": einsum_text(d)}
                for chain, d in zip(chains, derivatives)
            ],
        }
        if args.cost:
            out["cost"] = [
                {
                    "of": label,
                    "flops": c.flops,
                    "naive_flops": c.naive_flops,
                    "largest_intermediate": c.largest_intermediate,
                    "contractions": c.contractions,
                }
                for label, c in zip(labels, costs)
            ]
        if args.check:
            out["check"] = [
                {"wrt": ",".join(r.wrt), "ok": r.ok, "max_abs_error": r.max_abs_error}
                for rep in reports
                for r in rep.results
            ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif not derivatives:
        print(str(parsed) if args.format == "index" else _render(expr, args.format))
    else:
        for d in derivatives:
            print(_render(d, args.format))
    if args.cost and args.format != "json":
        # Generated code stays clean on stdout; the table goes beside it.
        print(cost_table(labels, costs, dims), file=sys.stderr if args.format in ("python", "latex") else sys.stdout)
    if args.check and args.format != "json":
        for rep in reports:
            print(rep, file=sys.stderr)
    return 0 if all(rep.ok for rep in reports) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints the message on stderr and returns 2."""
    try:
        return run(argv)
    except IndexDiffError as err:
        print(f"indexdiff: error: {err}", file=sys.stderr)
        return 2
    except RecursionError:
        print("indexdiff: error: the expression is too deeply nested", file=sys.stderr)
        return 2
