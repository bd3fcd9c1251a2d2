"""The command line: read an expression or program, differentiate it, print it in the chosen format, check it."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .cliargs import parser
from .diff import diff
from .directional import along_label, along_options
from .errors import IndexDiffError
from .expr import Expr, Program
from .forward import needed
from .matrixhint import announce, read_matrix
from .names import all_indices
from .parser import parse
from .program import gradient_text, program_einsum

if TYPE_CHECKING:
    import numpy as np

    from .cost import Cost

__all__ = ["main"]

# The symbolic path (parse, differentiate, print index notation) imports no numpy: the modules that compute
# (check, cost, code generation, --data) are imported where they are used, so the command starts quickly.


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


def parse_dims(*texts: str, known: set[str] | None = None) -> dict[str, int]:
    """``"i=3,j=4"`` -> ``{"i": 3, "j": 4}``; several texts add up. An index given two different sizes, or (when
    ``known`` is given) one not in ``known``, is an error."""
    dims: dict[str, int] = {}
    for text in texts:
        pos = 0
        for part in text.split(","):
            name, eq, value = (p.strip() for p in part.partition("="))
            at, end = pos + len(part) - len(part.lstrip()), pos + len(part.rstrip())
            if part.strip():
                if not eq or not name or not re.fullmatch(r"[0-9]{1,8}", value) or not 1 <= int(value) <= 10**7:
                    raise IndexDiffError(
                        f"bad size {part.strip()!r} in --dims",
                        text,
                        at,
                        end,
                        hint="write --dims i=3,j=4 (each index a size from 1 to 10000000, in digits 0-9)",
                    )
                if dims.get(name, int(value)) != int(value):
                    raise IndexDiffError(
                        f"index '{name}' is given two sizes in --dims ({dims[name]} and {int(value)})",
                        text,
                        at,
                        end,
                        hint="give each index one size",
                    )
                if known is not None and name not in known:
                    raise IndexDiffError(
                        f"--dims gives a size to '{name}', which is not an index of the expression",
                        text,
                        at,
                        at + len(part.strip()) - len(part.strip().partition("=")[2]) - 1,
                        hint=f"the expression's indices are: {', '.join(sorted(known)) or 'none'}",
                    )
                dims[name] = int(value)
            pos += len(part) + 1
    return dims


def _indices(parsed: Expr | Program) -> set[str]:
    """Every index letter the user wrote, in every statement."""
    exprs = parsed.statements if isinstance(parsed, Program) else (parsed,)
    return {i for e in exprs for i in all_indices(e.node) | set(e.free)}


def _options(args: argparse.Namespace, parsed: Expr | Program) -> tuple[dict[str, int], dict[str, np.ndarray] | None]:
    """The sizes of --dims and the arrays of --data, validated against the expression and the other options."""
    if args.dims and not (args.check or args.cost):
        raise IndexDiffError(
            "--dims has no effect without --check or --cost", " ".join(args.dims), hint="add --check or --cost"
        )
    if args.data is not None and not args.check:
        raise IndexDiffError("--data has no effect without --check", args.data, hint="add --check")
    if args.seed < 0:
        raise IndexDiffError(
            f"--seed must be an integer >= 0, not {args.seed}", str(args.seed), 0, hint="e.g. --seed 0 or --seed 7"
        )
    return parse_dims(*args.dims, known=_indices(parsed)), None if args.data is None else load_data(args.data)


def load_data(path: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (no pickled objects), by name."""
    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
    except OSError as err:
        raise IndexDiffError(f"cannot read {path}: {err.strerror or err}", path, hint="check the file name") from None
    except (ValueError, EOFError, zipfile.BadZipFile):
        loaded = None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise IndexDiffError(
            f"{path} is not an .npz file of named arrays",
            path,
            hint="save one array per tensor: np.savez('data.npz', x=x, A=A)",
        )
    with loaded:
        out = {}
        for name in loaded.files:
            try:
                out[name] = loaded[name]
            except (ValueError, OSError, zipfile.BadZipFile) as err:
                raise IndexDiffError(
                    f"cannot read the array '{name}' of {path} ({err})",
                    path,
                    hint="save plain numeric arrays (no Python objects) with np.savez",
                ) from None
    return out


def _progress(label: str, done: int, total: int) -> None:
    """One line per report; on a terminal, one line rewritten in place."""
    line = f"checking {label}: {done}/{total} perturbations"
    if sys.stderr.isatty():
        print(f"\r{line}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def _with_origins(e: Expr, original: Expr, dims: dict[str, int]) -> dict[str, int]:
    """``dims`` plus the sizes of a derivative's new indices, read off the variables' axes in ``original``."""
    from .data import shapes

    found, _ = shapes(original, dims, defaults=False)
    extra = {i: found[t][axis] for i, (t, axis) in e.origins.items() if t in found and i not in dims}
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
            stdin = getattr(sys.stdin, "buffer", None)
            text = sys.stdin.read() if stdin is None else _decode(stdin.read(), "stdin")
        else:
            try:
                with open(args.file, "rb") as fh:
                    text = _decode(fh.read(), args.file)
            except OSError as err:
                raise IndexDiffError(f"cannot read {args.file}: {err.strerror}", hint="check the file name") from None
    elif args.expression is not None:
        text = args.expression
    else:
        raise IndexDiffError("no expression given", hint='try: indexdiff "x_i A_ij x_j" --wrt x')
    return text, read_matrix(text, args.shapes) if args.matrix else parse(text)


def _decode(raw: bytes, source: str) -> str:
    """UTF-8 text (a leading byte order mark is dropped); anything else is an error that points at the bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = raw.rfind(b"\n", 0, err.start) + 1
        stop = min(err.start + 40, len(raw))
        line = raw[start:stop].decode("utf-8-sig", errors="replace")
        shown = "".join(c if c.isprintable() else "\ufffd" for c in line)
        col = len(raw[start : err.start].decode("utf-8-sig", errors="replace"))
        raise IndexDiffError(
            f"{source} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})",
            shown,
            col,
            hint="save the file as UTF-8 (index notation is text: x_i A_ij x_j)",
        ) from None


def _render(expr: Expr | Program, fmt: str) -> str:
    if fmt != "einsum":
        return str(expr)
    if isinstance(expr, Program):
        return program_einsum([expr])
    from .codegen import einsum_text

    return einsum_text(expr)


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.check:
        from .alongcheck import check_along
        from .check import check
    if args.cost:
        from .cost import cost
    text, parsed = _read(args)
    announce(args, text, parsed)
    if args.symmetric:
        from .symmetric import declare

        parsed = declare(parsed, ",".join(args.symmetric), text)
    dims, data = _options(args, parsed)
    if args.loss is not None and not isinstance(parsed, Program):
        raise IndexDiffError("--loss names a statement of a program", hint="use it with -f FILE holding statements")
    # A program is worked on statement by statement: its derivatives are programs (ix.diff), never one tree.
    expr = Program(needed(parsed, args.loss)) if isinstance(parsed, Program) else parsed
    final = expr.statements[-1] if isinstance(expr, Program) else expr
    chains = [split_specs(w) for w in args.wrt]
    if args.taylor is not None:  # the polynomial replaces the expression
        from .taylor import taylor_option

        expr = final = parsed = taylor_option(parsed, chains, args.along, args.taylor, args.check)
        chains, args.along = [], []
    alongs = along_options(chains, args.along, args.format, args.steps)
    program_gradient = isinstance(parsed, Program) and chains and args.format in ("index", "python") and not args.along
    derivatives = (
        []
        if program_gradient and not (args.check or args.cost)
        else [diff(expr, *c, along=a) for c, a in zip(chains, alongs)]
    )
    reports = (
        [
            check_along(expr, chain, a, data, dims, args.seed)
            if a
            else check(expr, *chain, arrays=data, dims=dims, seed=args.seed, progress=_progress)
            for chain, a in zip(chains, alongs)
        ]
        if args.check
        else []
    )
    labels = ["value", *(along_label(chain, a) for chain, a in zip(chains[: len(derivatives)], alongs))]
    costs = (
        [cost(e, dims if isinstance(e, Program) else _with_origins(e, expr, dims)) for e in (expr, *derivatives)]
        if args.cost
        else []
    )
    if args.steps:
        from .derivation import steps_text

        print(steps_text(parsed, chains, args.format, args.loss))
    elif isinstance(parsed, Program) and chains and args.format == "index" and not args.along:
        print(gradient_text(parsed, args.loss, chains))  # the backward pass as statements (reverse mode)
    elif args.format in ("python", "latex") or (
        isinstance(expr, Program) and args.format == "einsum" and not args.along
    ):
        from .codegen import codegen

        print(codegen(expr, *(",".join(c) for c in chains), format=args.format))
    elif args.format in ("matrix", "latex-matrix", "numpy"):
        from .matrixcode import cli_text

        print(cli_text(expr, derivatives, chains, args.format, args.loss, bool(args.along)))
    elif args.format == "json":
        from .matrixcode import matrix_fields

        out = {
            "input": text,
            "free": list(final.free),
            "index": str(parsed),
            **({"symmetric": sorted(parsed.symmetric)} if isinstance(parsed, Expr) and parsed.symmetric else {}),
            **matrix_fields(expr),
            "derivatives": [
                {
                    "wrt": ",".join(chain),
                    **({"along": a if isinstance(a, str) else list(a)} if a else {}),
                    "free": list((d.statements[-1] if isinstance(d, Program) else d).free),
                    "index": str(d),
                    "einsum": _render(d, "einsum"),
                    **matrix_fields(d),
                }
                for chain, a, d in zip(chains, alongs, derivatives)
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
                {
                    "wrt": ",".join(r.wrt),
                    "ok": r.ok,
                    "max_abs_error": r.max_abs_error if r.cause is None else None,  # never NaN: strict JSON
                    "cause": r.cause,
                    "warnings": list(rep.warnings),
                }
                for rep in reports
                for r in rep.results
            ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif not derivatives:
        print(str(parsed) if args.format == "index" else _render(expr, args.format))
    else:
        for chain, d in zip(chains, derivatives):
            text = _render(d, args.format)
            if args.label and not args.along:
                from .display import labelled

                text = labelled(expr, d, chain, text)
            print(text)
    if args.cost and args.format != "json":
        # Generated code stays clean on stdout; the table goes beside it.
        print(cost_table(labels, costs, dims), file=sys.stderr if args.format in ("python", "latex") else sys.stdout)
    if args.check and args.format != "json":
        for rep in reports:
            print(rep, file=sys.stderr)
    return 0 if all(rep.ok for rep in reports) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints the message on stderr and returns 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["serve"]:  # the playground page (indexdiff serve --help)
        from .serve import main as serve

        return serve(args[1:])
    try:
        code = run(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return code
    except IndexDiffError as err:
        print(f"indexdiff: error: {err}", file=sys.stderr)
        return 2
    except RecursionError:
        print("indexdiff: error: the expression is too deeply nested", file=sys.stderr)
        return 2
    except MemoryError:
        print("indexdiff: error: out of memory\nhint: use smaller --dims, or split the expression", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except SystemExit as done:  # --help and --version: main returns the status
        return done.code if isinstance(done.code, int) else 0
    except UnicodeEncodeError as err:  # stdout cannot show a character of the result (a Greek index, δ)
        print(
            f"indexdiff: error: the output needs characters that {err.encoding} cannot encode\n"
            "hint: use UTF-8 output: PYTHONIOENCODING=utf-8 indexdiff ...",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # the reader of our output left (indexdiff ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
