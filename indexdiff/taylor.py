"""Taylor polynomials: ``ix.taylor(e, "x", order=2, step="h")`` is e + ∂e/∂x_k h_k + 1/2 h_k H_kl h_l (+ ...).

The polynomial of e around x in the direction h (a new tensor with x's shape), as an expression with e's indices:
the sum of the directional derivatives Dⁿe[h, ..., h] / n! for n = 0..order. Each order is the directional
derivative of the one before along h (``directional.py``), so no Hessian or higher derivative tensor is formed:
each term costs about what e's gradient costs. Evaluated at x and h it approximates e at x + h, with an error of
order |h|^(order+1).
"""

from __future__ import annotations

from fractions import Fraction

from .diff import _wrt, with_indices
from .directional import along_names, spread, step_along
from .errors import ArgumentError, DiffError, IndexDiffError, expect_expr
from .expr import Add, Expr, Mul, Number, Program, deep
from .names import tensor_names
from .symmetric import within

__all__ = ["taylor", "MAX_ORDER"]

#: The highest order accepted: each order differentiates the one before, and the terms grow with it.
MAX_ORDER = 10


def taylor(expr: Expr, wrt: str, order: int = 2, step: str = "h") -> Expr:
    """The Taylor polynomial of ``expr`` of degree ``order`` around ``wrt`` in the direction ``step``.

    >>> import indexdiff as ix
    >>> print(ix.taylor(ix.parse("exp(a)"), "a", order=2))
    exp(a) + h exp(a) + 0.5 h^2 exp(a)
    """
    expect_expr(expr, "taylor")
    if isinstance(expr, Program):
        raise ArgumentError(
            "ix.taylor takes one expression, not a program",
            str(expr.statements[-1]) if expr.statements else None,
            hint="write the program's output as one expression (substitute its statements), or use "
            "ix.diff(program, 'x', along='h') for each order's directional derivative",
        )
    if not isinstance(wrt, str):
        raise ArgumentError(
            f"ix.taylor expands in one variable, given as a string, got {type(wrt).__name__}",
            hint="e.g. ix.taylor(e, 'x', order=2)",
        )
    if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
        raise ArgumentError(
            f"the order must be an integer from 0 to {MAX_ORDER}, got {order!r}",
            hint="e.g. order=2 (the value, the directional derivative and half the second one)",
        )
    if not isinstance(step, str):
        raise ArgumentError(f"step must name a new tensor, got {type(step).__name__}", hint="e.g. step='h'")
    if "_" in wrt:
        raise DiffError(
            "ix.taylor takes the variable's name alone: its indices are summed with the step's",
            wrt,
            wrt.index("_"),
            len(wrt),
            hint=f"write {wrt.partition('_')[0].strip()}",
        )
    _wrt(expr, wrt)  # a variable of the expression, also at order 0
    along_names((wrt,), step, dict(expr.variables), set(expr.variables) | tensor_names(expr.node))
    return deep(_taylor, expr, wrt.strip(), order, step.strip())


def _taylor(expr: Expr, wrt: str, order: int, step: str) -> Expr:
    terms = [expr.node]
    current, factorial = expr, 1
    try:
        for n in range(1, order + 1):
            current = step_along(current, wrt, step)
            factorial *= n
            terms.append(current.node if factorial == 1 else Mul((Number(Fraction(1, factorial)), current.node)))
        declared = expr.symmetric & tensor_names(expr.node)
        whole = within(declared, spread, Add(tuple(terms))) if len(terms) > 1 else expr.node
        node = within(declared, with_indices, whole, frozenset(expr.free))
    except IndexDiffError as err:
        raise err.with_source(str(expr)) from None
    variables = {**expr.variables, step: expr.variables[wrt]} if order else dict(expr.variables)
    return Expr(node, expr.free, expr.name, variables, expr.origins, expr.symmetric)


def taylor_option(expr: Expr | Program, chains: list[list[str]], along: list[str], order: int, check: bool) -> Expr:
    """The command line's ``--taylor N --wrt x [--along h]``: the polynomial, printed in place of the expression."""
    if len(chains) != 1 or len(chains[0]) != 1:
        raise IndexDiffError(
            "--taylor expands in one variable: give one --wrt with one name",
            " ".join(",".join(c) for c in chains) or None,
            hint="e.g. --taylor 2 --wrt x (the step is h; --along d names it d)",
        )
    if len(along) > 1 or (along and "," in along[0]):
        raise IndexDiffError("--taylor takes one step name", " ".join(along), hint="e.g. --along h")
    if check:
        raise IndexDiffError(
            "--check checks derivatives; --taylor prints a polynomial",
            hint="check the derivatives it is built from: --wrt x,x --check",
        )
    if isinstance(expr, Program):
        raise IndexDiffError(
            "--taylor takes one expression, not a program", str(expr.statements[-1]), hint="write it as one expression"
        )
    return taylor(expr, chains[0][0], order, along[0] if along else "h")
