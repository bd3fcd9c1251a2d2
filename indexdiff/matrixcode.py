"""The matrix-notation output formats of ``ix.codegen`` and the command line: ``"matrix"`` (text, one line per
expression), ``"latex-matrix"`` (one equation per line) and ``"numpy"`` (functions to paste), for an expression
and its derivatives or, statement by statement, for a program and its derivative programs (its backward pass when
every chain is one variable and the loss a scalar, as the index format prints it)."""

from __future__ import annotations

from collections.abc import Sequence

from .expr import Expr, Program
from .matrixform import to_matrix

__all__ = ["MATRIX_FORMATS", "matrix_code", "matrix_fields", "cli_text"]

MATRIX_FORMATS = ("matrix", "latex-matrix", "numpy")


def _function_name(f: str, chain: Sequence[str]) -> str:
    from .codegen import python_names

    parts = [python_names({spec.split("_")[0]: 0})[spec.split("_")[0]] for spec in chain]
    return f"d{len(chain) if len(chain) > 1 else ''}{f}_" + "_".join(f"d{p}" for p in parts)


def _expr_code(expr: Expr, chains: Sequence[Sequence[str]], fmt: str) -> str:
    from .codegen import _derivative_label, python_names
    from .diff import diff
    from .printer import latex_name

    derivatives = [(chain, diff(expr, *chain)) for chain in chains]
    if fmt == "matrix":
        return "\n".join(to_matrix(e).text for e in (expr, *(d for _, d in derivatives)))
    if fmt == "latex-matrix":
        head = latex_name(expr.name or "f")
        lines = [f"{head} = {to_matrix(expr).latex}"]
        lines += [f"{_derivative_label(expr, d, list(c), latex=True)} = {to_matrix(d).latex}" for c, d in derivatives]
        return "\n".join(lines)
    from .matrixnumpy import numpy_module

    names = python_names(expr.variables)
    f = python_names({expr.name or "f": 0})[expr.name or "f"]
    return numpy_module([(f, expr), *((_function_name(f, c), d) for c, d in derivatives)], names)


def _programs(program: Program, chains: Sequence[Sequence[str]], loss: str | None) -> list[Program]:
    from .forward import needed
    from .program import outputs_of, used
    from .reverse import grad

    if not chains and loss is None:
        return [Program(used(program.statements, program.outputs), program.outputs)]
    if all(len(c) == 1 for c in chains) and not needed(program, loss)[-1].free:
        return [grad(program, loss, [c[0] for c in chains])]
    return outputs_of(program, chains, loss)


def _program_code(program: Program, chains: Sequence[Sequence[str]], fmt: str, loss: str | None) -> str:
    from .printer import latex_name
    from .program import _lines

    programs = _programs(program, chains, loss)
    if fmt == "matrix":
        return "\n".join(_lines(programs, lambda s: f"{s.name} = {to_matrix(s).text}"))
    if fmt == "latex-matrix":
        return "\n".join(_lines(programs, lambda s: f"{latex_name(s.name or 'f')} = {to_matrix(s).latex}"))
    from .matrixnumpy import program_module

    return program_module(programs)


def matrix_code(expr: Expr | Program, chains: Sequence[Sequence[str]], fmt: str, loss: str | None = None) -> str:
    """``expr`` and its derivatives by each chain of variables in the matrix format ``fmt``."""
    if isinstance(expr, Program):
        return _program_code(expr, chains, fmt, loss)
    return _expr_code(expr, chains, fmt)


def matrix_fields(e: Expr | Program) -> dict[str, object]:
    """The matrix form of ``e`` for JSON output: ``matrix`` (text) and ``matrix_fallback`` (terms kept in index
    notation)."""
    form = to_matrix(e)
    return {"matrix": form.text, "matrix_fallback": list(form.fallback)}


def cli_text(
    expr: Expr | Program,
    derivatives: Sequence[Expr | Program],
    chains: Sequence[Sequence[str]],
    fmt: str,
    loss: str | None,
    along: bool,
) -> str:
    """What ``--format matrix|latex-matrix|numpy`` prints: like ``--format index``, the derivatives (or the
    expression without ``--wrt``; a program's backward pass) in matrix text; LaTeX and NumPy hold the value and
    every derivative, as ``--format latex`` and ``python`` do. Derivatives along a vector (text and LaTeX only:
    the command line refuses ``--format numpy`` with ``--along``) are printed as given."""
    if along:
        forms = [to_matrix(d) for d in derivatives]
        return "\n".join(f.latex if fmt == "latex-matrix" else f.text for f in forms)
    if fmt == "matrix" and isinstance(expr, Expr):
        return "\n".join(to_matrix(d).text for d in (derivatives or [expr]))
    return matrix_code(expr, chains, fmt, loss)
