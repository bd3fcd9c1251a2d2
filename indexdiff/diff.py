"""Derivatives by the δ rule, ∂x_i/∂x_k = δ_ik: one rule per node type, the function table for the chain rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import overload

from .errors import DiffError, IndexDiffError, expect_specs
from .expr import ONE, ZERO, Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Program, Sum, Tensor, deep, memo
from .functions import FUNCTIONS
from .names import all_indices, fresh, separate, share, tensor_names, witness
from .parser import split_tensor
from .simplify import ones, simplify
from .trace import TRACE

__all__ = ["diff", "derivative", "with_indices"]

Rule = Callable[[Node, str, tuple[str, ...]], Node]


def _depends(node: Node, name: str) -> bool:
    return name in tensor_names(node)


def _tensor(node: Tensor, name: str, new: tuple[str, ...]) -> Node:
    if node.name != name:
        return ZERO
    deltas = tuple(Delta((i, k)) for i, k in zip(node.indices, new))
    if not deltas:
        return ONE
    return deltas[0] if len(deltas) == 1 else Mul(deltas)


def _mul(node: Mul, name: str, new: tuple[str, ...]) -> Node:
    terms = []
    for k, f in enumerate(node.factors):
        if _depends(f, name):
            terms.append(Mul((*node.factors[:k], derivative(f, name, new), *node.factors[k + 1 :])))
    return Add(tuple(terms)) if terms else ZERO


def _func(node: Func, name: str, new: tuple[str, ...]) -> Node:
    return Mul((FUNCTIONS[node.name].derivative(node.arg), derivative(node.arg, name, new)))


def _pow(node: Pow, name: str, new: tuple[str, ...]) -> Node:
    e = node.exponent
    return Mul((Number(e), Pow(node.base, e - 1), derivative(node.base, name, new)))


def _sum(node: Sum, name: str, new: tuple[str, ...]) -> Node:
    # ∂/∂a Σ_j (A_ij - a) = -Σ_j 1 = -n_j: the witnesses keep j's length known once A is gone.
    # The simplifier drops a witness wherever another factor still carries its index.
    witnesses = [w for j in node.indices if (w := witness(node.body, j)) is not None]
    return Sum(node.indices, Mul((derivative(node.body, name, new), *witnesses)))


def _op(node: Op, name: str, new: tuple[str, ...]) -> Node:
    from .identities import operator
    from .operators import operator_derivative

    reduced = operator(node.name, node.indices, node.arg)  # inv(inv(M)) is M: differentiate M, not two inverses
    if reduced != node:
        return derivative(reduced, name, new)

    d = derivative(node.arg, name, new)
    avoid = all_indices(node) | all_indices(d) | set(new) | tensor_names(node)
    return operator_derivative(node, d, lambda n: fresh(avoid, n))


RULES: dict[type, Rule] = {
    Number: lambda node, name, new: ZERO,
    Delta: lambda node, name, new: ZERO,
    Tensor: _tensor,
    Mul: _mul,
    Add: lambda node, name, new: Add(tuple(derivative(t, name, new) for t in node.terms)),
    Sum: _sum,
    Func: _func,
    Pow: _pow,
    Op: _op,
}


def derivative(node: Node, name: str, new: tuple[str, ...]) -> Node:
    """∂node/∂name_new, unsimplified; ``new`` must not clash with any index of ``node``.

    Cached on each node, so a subtree shared by several parents (as derivatives make them) is differentiated once.
    """
    if not _depends(node, name):
        return ZERO
    tracer = TRACE.get()
    if tracer is not None and tracer.pending is not None:  # ix.steps: one rule at a time, the rest pending
        return tracer.pending(node, name, new)
    cache = memo(node)
    key = ("derivative", name, new, FUNCTIONS.version)  # a function redefined (ix.function): derived anew
    found = cache.get(key)
    if found is None:
        found = cache[key] = RULES[type(node)](node, name, new)
    return found


def _wrt(expr: Expr, spec: str) -> tuple[str, tuple[str, ...]]:
    """``"x"`` or ``"x_k"`` -> the variable and its new indices (fresh ones when not given)."""
    if not isinstance(spec, str) or not spec.strip():
        raise DiffError(
            "the variable to differentiate by is empty",
            text=str(spec),
            pos=0,
            hint="name a tensor of the expression, e.g. x or x_k",
        )
    text = spec.strip()
    try:
        name, given, pos = split_tensor(text)
    except IndexDiffError as err:
        raise err.with_source(text) from None
    known = ", ".join(sorted(expr.variables)) or "none"
    if name not in expr.variables:
        raise DiffError(
            f"cannot differentiate by '{name}': the expression does not contain it",
            text=text,
            pos=0,
            end=len(name),
            hint=f"the expression's tensors are: {known}",
        )
    rank = expr.variables[name]
    if not given:
        used = all_indices(expr.node) | set(expr.free) | tensor_names(expr.node)  # not a scalar's name either
        return name, fresh(used, rank)
    if len(given) != rank:
        raise DiffError(
            f"'{name}' has {rank} ind{'ex' if rank == 1 else 'ices'} but {len(given)} were given",
            text=text,
            pos=len(name) + 1,
            end=len(text),
            hint=f"write {name} for fresh indices, or give {rank}" + (f", e.g. {name}_{'klmn'[:rank]}" if rank else ""),
        )
    for k, i in enumerate(given):
        if i in given[:k]:
            raise DiffError(
                f"index '{i}' is given twice",
                text=text,
                pos=pos[k],
                end=pos[k] + len(i),
                hint="give each new index a different name",
            )
        if i in expr.free:
            raise DiffError(
                f"index '{i}' is already an output index of the expression",
                text=text,
                pos=pos[k],
                end=pos[k] + len(i),
                hint=f"the output indices are {', '.join(expr.free)}; choose another letter",
            )
    return name, given


def with_indices(node: Node, free: frozenset[str]) -> Node:
    """``node`` simplified, carrying every index of ``free``: a result constant along an output index
    (∂x_i/∂c = 1 for every i) keeps that index as δ_i, the ones vector."""
    return deep(_with_indices, node, free)


def _with_indices(node: Node, free: frozenset[str]) -> Node:
    node = simplify(node, free)
    missing = free - node.free
    if missing and node != ZERO:
        node = simplify(Mul((node, ones(missing))), free)
    return node


def _differentiate(
    node: Node, name: str, new: tuple[str, ...], free: frozenset[str], symmetric: frozenset[str] = frozenset()
) -> Node:
    if symmetric:  # tensors declared symmetric that the node uses (symmetric.py)
        from .symmetric import derivative_by

        return derivative_by(symmetric, node, name, new, free)
    return with_indices(derivative(share(separate(node, free)), name, new), free)


@overload
def diff(
    expr: Expr, *wrt: str, along: str | Sequence[str | None] | None = None, symmetric: str | Iterable[str] | None = None
) -> Expr: ...
@overload
def diff(
    expr: Program,
    *wrt: str,
    along: str | Sequence[str | None] | None = None,
    symmetric: str | Iterable[str] | None = None,
) -> Program: ...
def diff(
    expr: Expr | Program,
    *wrt: str,
    along: str | Sequence[str | None] | None = None,
    symmetric: str | Iterable[str] | None = None,
) -> Expr | Program:
    """∂expr/∂wrt[0]/∂wrt[1]...: the new indices are appended to ``expr.free`` in order.

    For a Program, a Program whose last statement is the derivative of its last (see ``forward.py``).
    ``along="v"`` contracts the last derivative with a new tensor v (a directional derivative; with ``"w", "w"``
    the Hessian-vector product), ``along=("u", "v")`` each one (see ``directional.py``).
    ``symmetric={"S"}`` declares two-index tensors symmetric, in addition to ``expr.symmetric``: results are
    simplified with S_ij = S_ji, and the derivative by S is sym(G) = (G + Gᵀ)/2 (see ``symmetric.py``).

    >>> import indexdiff as ix
    >>> g = ix.diff(ix.parse("x_i A_ij x_j"), "x")
    >>> g.free
    ('k',)
    >>> print(ix.diff(ix.parse("x_i A_ij x_j"), "A_kl"))
    x_k x_l
    """
    if symmetric is not None:
        from .symmetric import declare

        expr = declare(expr, symmetric)
    if along is not None:
        from .directional import directional

        return directional(expr, wrt, along)
    if isinstance(expr, Program):
        from .forward import derivative_program

        return derivative_program(expr, *wrt)
    if not isinstance(expr, Expr):
        raise DiffError(f"expected an expression from indexdiff.parse, got {type(expr).__name__}")
    expect_specs(wrt, "diff")
    if not wrt:
        raise DiffError("no variable to differentiate by", hint="pass one, e.g. ix.diff(e, 'x')")
    for spec in wrt:
        name, new = _wrt(expr, spec)
        free = (*expr.free, *new)
        try:
            used = expr.symmetric & tensor_names(expr.node)
            node = deep(_differentiate, expr.node, name, new, frozenset(free), used)
        except IndexDiffError as err:  # raised while simplifying (a number out of range, a zero divisor)
            raise err.with_source(str(expr)) from None
        origins = dict(expr.origins)
        origins.update({k: (name, axis) for axis, k in enumerate(new)})
        expr = Expr(node, free, None, expr.variables, origins, expr.symmetric)
    return expr
