"""Statements shown the way expressions are: aligned LaTeX (programs, derivations) and labelled derivatives."""

from __future__ import annotations

from collections.abc import Sequence

from .expr import Expr
from .names import separate
from .printer import _ADD, _LatexPrinter, _Printer, written

__all__ = ["latex_text", "aligned", "rhs", "statement_latex", "program_latex_aligned", "labelled"]

_LATEX_SYMBOLS = {"δ": r"\delta", "Σ": r"\Sigma", "∘": r"\circ", "→": r"\to", "σ": r"\sigma", "∂": r"\partial"}


def latex_text(text: str) -> str:
    """Plain text for ``\\text{...}``: LaTeX's special characters escaped, the rules' symbols as math."""
    out = []
    for c in text:
        if c in _LATEX_SYMBOLS:
            out.append(f"${_LATEX_SYMBOLS[c]}$")
        elif c in "&%$#_{}":
            out.append("\\" + c)
        elif c in "^~\\":
            out.append({"^": r"\^{}", "~": r"\~{}", "\\": r"\textbackslash{}"}[c])
        else:
            out.append(c)
    return "".join(out)


def aligned(rows: Sequence[str]) -> str:
    """An ``aligned`` block of rows (each holding its ``&`` marks)."""
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def rhs(s: Expr, printer: _Printer) -> str:
    """The right-hand side of ``s`` as ``printer`` writes it."""
    free = frozenset(s.free)
    return printer.fmt(separate(s.node, free), _ADD, free)


def statement_latex(s: Expr, printer: _LatexPrinter | None = None) -> tuple[str, str]:
    """A statement's left-hand side (empty for a bare expression) and right-hand side in LaTeX."""
    printer = printer or _LatexPrinter()
    body, full = rhs(s, printer), written(s, printer)
    return (full[: len(full) - len(body) - len(printer.equals)] if full != body else ""), body


def program_latex_aligned(statements: Sequence[Expr]) -> str:
    """Statements as one aligned block, ``lhs &= rhs`` a row each."""
    return aligned([" &= ".join(statement_latex(s)) for s in statements])


def labelled(expr: Expr, d: Expr, chain: Sequence[str], text: str) -> str:
    """``∂f/∂x_k = ...``: ``text``, the derivative ``d`` of ``expr`` by ``chain`` as printed (index notation: its
    right-hand side, whose axes the label orders), after a label naming it."""
    from .codegen import _derivative_label

    return f"{_derivative_label(expr, d, list(chain), latex=False)} = {rhs(d, _Printer()) if text == str(d) else text}"
