"""Reverse mode over programs: one adjoint statement per intermediate, derived by the δ rule, in index notation.

For a statement ``y_I = f(..., h_K, ...)`` the adjoint of h collects ``Σ_I dy_I ∂y_I/∂h_K`` from every later
statement that uses h; ``diff`` supplies the Jacobian and the simplifier contracts its deltas, so an element-wise
layer gives ``dz_bi = dh_bi sigmoid(z_bi) (1 - sigmoid(z_bi))`` and an affine one ``dW_ij = dz_bi x_bj``.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from itertools import permutations

from .canonical import canonical
from .diff import diff, with_indices
from .errors import IndexDiffError
from .expr import Add, Expr, Mul, Node, Number, Program, Sum, Tensor
from .names import children, fresh, rebuild, rename, tensors

__all__ = ["grad"]


def _reuse(node: Node, forward: dict[object, tuple[str, tuple[str, ...]]]) -> Node:
    """``node`` with every subexpression that is a forward statement's right-hand side replaced by its name:
    ``sigmoid(z_bi)`` becomes ``h_bi`` when ``h_bi = sigmoid(z_bi)`` was computed on the way forward."""
    if len(node.free) <= 3 and not isinstance(node, (Tensor, Number)):
        for order in permutations(sorted(node.free)):
            key = canonical(rename(node, {i: f"#{k}" for k, i in enumerate(order)}))
            if key in forward:
                name, _ = forward[key]
                return Tensor(name, order)
    parts = children(node)
    return rebuild(node, tuple(_reuse(p, forward) for p in parts)) if parts else node


def _forward_keys(statements: Sequence[Expr]) -> dict[object, tuple[str, tuple[str, ...]]]:
    keys: dict[object, tuple[str, tuple[str, ...]]] = {}
    for s in statements:
        if not isinstance(s.node, Tensor):
            key = canonical(rename(s.node, {i: f"#{k}" for k, i in enumerate(s.free)}))
            keys.setdefault(key, (s.name, s.free))
    return keys


def _adjoint_names(program: Program, wanted: Sequence[str]) -> dict[str, str]:
    """``d`` + name for each wanted tensor, made unique against every name the program uses."""
    taken = set(program.names) | set(program.inputs)
    out = {}
    for name in wanted:
        adjoint, n = f"d{name}", 1
        while adjoint in taken:
            adjoint, n = f"d{name}{n}", n + 1
        taken.add(adjoint)
        out[name] = adjoint
    return out


def _input_indices(program: Program, name: str, rank: int) -> tuple[str, ...]:
    """Index letters for an input's adjoint: those of its first use when distinct, else fresh ones."""
    for s in program.statements:
        for t in tensors(s.node):
            if t.name == name and len(set(t.indices)) == rank:
                return t.indices
    return fresh((), rank)


def grad(program: Program | Expr, loss: str | None = None, wrt: Sequence[str] = ()) -> Program:
    """The gradient program of ``loss`` (a scalar statement; default the last) with respect to ``wrt``.

    The result holds the forward statements, then one adjoint statement per intermediate that the gradients need
    (in reverse order), then ``d<name>`` for each of ``wrt``; its ``outputs`` are the loss and the gradients.

    >>> import indexdiff as ix
    >>> p = ix.parse("z_bi = W_ij x_bj + c_i; h_bi = tanh(z_bi); L = sum_bi(h_bi^2)")
    >>> print(ix.grad(p, wrt=["W"]).statements[-1])
    dW_ij = dz_bi x_bj
    """
    if isinstance(program, Expr):
        if program.name is None:
            raise IndexDiffError("grad needs a program of statements", str(program), hint="write L = ... for the loss")
        program = Program((program,))
    if not isinstance(program, Program):
        raise IndexDiffError(f"expected a program from indexdiff.parse, got {type(program).__name__}")
    names = program.names
    loss = loss or names[-1]
    if loss not in names:
        raise IndexDiffError(
            f"the program defines no '{loss}'", str(program), hint=f"the loss is one of: {', '.join(names)}"
        )
    end = names.index(loss)
    statements = program.statements[: end + 1]
    if statements[-1].free:
        raise IndexDiffError(
            f"the loss '{loss}' is not a scalar (it has indices {', '.join(statements[-1].free)})",
            str(statements[-1]),
            0,
            len(loss),
            hint="sum it to a scalar: L = sum_i(...)",
        )
    if isinstance(wrt, str):
        wrt = [wrt]
    ranks = {**program.inputs, **{s.name: len(s.free) for s in statements}}
    for w in wrt:
        if w not in ranks or w == loss:
            raise IndexDiffError(
                f"cannot differentiate by '{w}': the loss does not depend on it",
                w,
                0,
                len(w),
                hint=f"choose among: {', '.join(n for n in ranks if n != loss)}",
            )
    # Adjoints are derived only for statements that depend on a variable (forward) and that the loss uses
    # (backward); a variable the loss does not use gets a zero gradient.
    depends = set(wrt)
    for s in statements:
        if any(name in depends for name in s.variables):
            depends.add(s.name)
    used = {loss}
    for s in reversed(statements):
        if s.name in used:
            used.update(s.variables)
    depends &= used
    adjoint = _adjoint_names(
        program, list(dict.fromkeys([*(s.name for s in statements[:-1] if s.name in depends), *wrt]))
    )
    derived: list[Expr] = []
    known: dict[str, Expr] = {}
    forward = _forward_keys(statements[:-1])

    def collect(name: str, target: tuple[str, ...]) -> Expr:
        """The adjoint of ``name``: Σ over its uses of (the user's adjoint) · (the user's Jacobian)."""
        parts: list[Node] = []
        for s in statements[statements.index(_statement(statements, name)) + 1 :] if name in names else statements:
            if name not in s.variables or (s.name != loss and s.name not in known):
                continue
            jacobian = diff(s, name)
            new = jacobian.free[len(s.free) :]
            node = jacobian.node
            if s.name != loss:  # chain: Σ_I dy_I ∂y_I/∂h
                node = (
                    Sum(s.free, Mul((Tensor(adjoint[s.name], s.free), node)))
                    if s.free
                    else Mul((Tensor(adjoint[s.name], ()), node))
                )
            parts.append(rename(node, dict(zip(new, target))))
        # The adjoint has the shape of ``name``: its lengths come from name's own axes.
        origins = {i: (name, axis) for axis, i in enumerate(target)}
        if not parts:  # the loss does not use it
            return Expr(Number(Fraction(0)), target, adjoint[name], {name: len(target)}, origins)
        body = with_indices(Add(tuple(parts)) if len(parts) > 1 else parts[0], frozenset(target))
        body = with_indices(_reuse(body, forward), frozenset(target))
        variables = {t.name: len(t.indices) for t in tensors(body)}
        return Expr(body, target, adjoint[name], variables, origins)

    for s in reversed(statements[:-1]):
        if s.name in depends:
            known[s.name] = collect(s.name, s.free)
            derived.append(known[s.name])
    for w in wrt:
        if w not in known:  # an input, or an intermediate the loss does not use
            known[w] = collect(w, _input_indices(program, w, ranks[w]))
            derived.append(known[w])
    return Program((*statements, *derived), (loss, *(adjoint[w] for w in wrt)))


def _statement(statements: Sequence[Expr], name: str) -> Expr:
    return next(s for s in statements if s.name == name)
