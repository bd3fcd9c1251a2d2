"""Reverse mode over programs: one adjoint statement per intermediate, derived by the δ rule, in index notation.

For a statement ``y_I = f(..., h_K, ...)`` the adjoint of h collects ``Σ_I dy_I ∂y_I/∂h_K`` from every later
statement that uses h; ``jacobian`` supplies the Jacobian and the simplifier contracts its deltas, so an
element-wise layer gives ``dz_bi = dh_bi sigmoid(z_bi) (1 - sigmoid(z_bi))`` and an affine one
``dW_ij = dz_bi x_bj``; forward values are reused by name (a softmax statement's adjoint is written with P itself,
``dS_ik = P_ik (dP_ik - P_ij dP_ij)``, a factor common to every term taken out: factoring.py). Linear in the
program's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from .canonical import resorted
from .diff import _wrt, with_indices
from .errors import IndexDiffError, expect_specs
from .expr import Add, Expr, Mul, Node, Number, Program, Sum, Tensor, deep
from .factoring import common_factor
from .jacobian import axis_origin, forward_keys, jacobian, rename_tensors, reuse, tensor_shape, unique_name
from .names import all_indices, fresh, rename, tensors
from .parser import split_tensor
from .trace import TRACE

__all__ = ["grad"]


def _adjoint_names(program: Program, wanted: Sequence[str]) -> dict[str, str]:
    """``d`` + name for each wanted tensor, made unique against every name the program uses."""
    taken = set(program.names) | set(program.inputs)
    return {name: unique_name(f"d{name}", taken) for name in wanted}


def relabel(s: Expr, indices: tuple[str, ...]) -> Expr:
    """The statement ``s`` with its left-hand side's indices renamed to ``indices`` (same axes)."""
    mapping = dict(zip(s.free, indices))
    origins = {mapping.get(i, i): o for i, o in s.origins.items()}
    return Expr(rename(s.node, mapping), indices, s.name, s.variables, origins)


def _specs(wrt: Sequence[str], ranks: dict[str, int], loss: str) -> list[tuple[str, tuple[str, ...] | None]]:
    """Each of ``wrt`` (``x`` or ``x_kl``) as its name and the indices given for its gradient (None: its own)."""
    out: list[tuple[str, tuple[str, ...] | None]] = []
    for spec in wrt:
        if not isinstance(spec, str) or not spec.strip():
            raise IndexDiffError(
                "the variable to differentiate by is empty", str(spec), 0, hint="name a tensor of the program, e.g. x"
            )
        text = spec.strip()
        try:
            name, given, _ = split_tensor(text)
        except IndexDiffError as err:
            raise err.with_source(text) from None
        if name not in ranks or name == loss:
            raise IndexDiffError(
                f"cannot differentiate by '{name}': the loss does not depend on it",
                text,
                0,
                len(name),
                hint=f"choose among: {', '.join(n for n in ranks if n != loss)}",
            )
        if given:  # the rank and distinctness checks of an expression's variable
            _wrt(Expr(Number(Fraction(0)), (), None, ranks), text)
        out.append((name, tuple(given) if given else None))
    return out


def _few_letters(chain: list[Expr], target: tuple[str, ...], tensor_names: tuple[str, ...]) -> bool:
    """Whether deriving an adjoint of ``chain`` takes every fresh name from the letters (a name like ``h1`` is
    taken only when more than 20 letters are in use): then only tensors named by one letter affect the result."""
    used = {i for s in chain for i in (*all_indices(s.node), *s.free)} | set(target)
    used |= {n for n in tensor_names if len(n) == 1}
    widest = max(len(target), *(len(s.free) for s in chain))
    return len({i for i in used if len(i) == 1}) + 3 * widest <= 20


def _first_uses(program: Program, names: set[str]) -> dict[str, tuple[str, ...]]:
    """The indices of each of ``names`` at its first use with distinct indices (one walk over the program)."""
    found: dict[str, tuple[str, ...]] = {}
    for s in program.statements:
        if names.isdisjoint(s.variables):
            continue
        for t in tensors(s.node):
            if t.name in names and t.name not in found and len(set(t.indices)) == len(t.indices):
                found[t.name] = t.indices
    return found


def grad(program: Program | Expr, loss: str | None = None, wrt: Sequence[str] = ()) -> Program:
    """The gradient program of ``loss`` (a scalar statement; default the last) with respect to ``wrt``.

    The result holds the forward statements, then one adjoint statement per intermediate that the gradients need
    (in reverse order), then ``d<name>`` for each of ``wrt``; its ``outputs`` are the loss and the gradients.
    ``wrt`` may name the gradient's indices: ``"W_kl"`` gives ``dW_kl = ...``.

    >>> import indexdiff as ix
    >>> p = ix.parse("z_bi = W_ij x_bj + c_i; h_bi = tanh(z_bi); L = sum_bi(h_bi^2)")
    >>> print(ix.grad(p, wrt=["W"]).statements[-1])
    dW_ij = dz_bi x_bj
    """
    # One call of ``deep`` for the whole derivation: the cyclic collector stays paused throughout (per statement,
    # it would run between statements, over the growing heap of cached forms: a fifth of the time at 200 layers).
    return deep(_grad, program, loss, wrt)


def _grad(program: Program | Expr, loss: str | None, wrt: Sequence[str]) -> Program:
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
    expect_specs(wrt, "grad")
    ranks = {**program.inputs, **{s.name: len(s.free) for s in statements}}
    specs = _specs(wrt, ranks, loss)
    wrt = [name for name, _ in specs]
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
    forward = forward_keys(statements[:-1])
    defined = {s.name: s for s in statements}
    memo: dict[tuple[str, int], tuple[str, int]] = {}
    users: dict[str, list[Expr]] = {}
    for s in statements:
        for name in s.variables:
            users.setdefault(name, []).append(s)

    shapes: dict[object, tuple[Node, tuple[str, ...]]] = {}

    def adjoint_sum(name: str, target: tuple[str, ...], chain: list[Expr]) -> Node:
        """Σ over the statements of ``chain`` (the uses of ``name``) of (the user's adjoint) · (the user's
        Jacobian), simplified. Derived once per shape: the layers of a deep network differ only in the names of
        their tensors, so a later layer's adjoint is an earlier one's with the names replaced (and its operands
        put in canonical order for those names)."""
        order: dict[str, int] = {}  # every tensor involved, numbered in order of appearance
        key_parts = []
        for s in chain:
            shape, names = tensor_shape(s.node)
            ids = tuple(order.setdefault(n, len(order)) for n in names)
            own = None if s.name == loss else order.setdefault(adjoint[s.name], len(order))
            key_parts.append((shape, s.free, ids, own))
        real = tuple(order)
        # Fresh index names avoid the names of tensors (never a scalar's name: k x_k), so a tensor named like an
        # index is part of the shape. Names like h1 are fresh names only once every letter is taken: a statement
        # with that many letters is derived afresh.
        letters = [(k, n) for k, n in enumerate(real) if len(n) == 1]
        key = (target, order[name], tuple(key_parts), tuple(letters))
        found = shapes.get(key) if _few_letters(chain, target, real) else None
        if found is not None:
            body, names = found
            if names == real:
                return body
            return resorted(rename_tensors(body, dict(zip(names, real))), frozenset(target))
        parts: list[Node] = []
        for s in chain:
            new = fresh(all_indices(s.node) | set(s.free), ranks[name])
            node = jacobian(s, name, new, simplified=False)  # simplified once, in the adjoint's sum
            if s.name != loss:  # chain: Σ_I dy_I ∂y_I/∂h
                node = (
                    Sum(s.free, Mul((Tensor(adjoint[s.name], s.free), node)))
                    if s.free
                    else Mul((Tensor(adjoint[s.name], ()), node))
                )
            parts.append(rename(node, dict(zip(new, target))))
        body = with_indices(Add(tuple(parts)) if len(parts) > 1 else parts[0], frozenset(target))
        shapes[key] = (body, real)
        return body

    def collect(name: str, target: tuple[str, ...]) -> Expr:
        """The adjoint of ``name``: Σ over its uses of (the user's adjoint) · (the user's Jacobian)."""
        chain = [s for s in users.get(name, ()) if s.name == loss or s.name in known]
        # The adjoint has the shape of ``name``: its lengths come from name's own axes.
        origins = {i: axis_origin(name, axis, defined, memo) for axis, i in enumerate(target)}
        if not chain:  # the loss does not use it
            return Expr(Number(Fraction(0)), target, adjoint[name], {name: len(target)}, origins)
        body = adjoint_sum(name, target, chain)
        reused = reuse(body, forward)
        body = body if reused is body else with_indices(reused, frozenset(target))
        factored = common_factor(body)  # P dP - P P dP as P (dP - P dP): one product fewer per element
        body = body if factored is body else with_indices(factored, frozenset(target))
        # The tensors used, and those the indices take their lengths from (so that compile asks for them).
        variables = {t.name: len(t.indices) for t in tensors(body)} | {t: ranks[t] for t, _ in origins.values()}
        result = Expr(body, target, adjoint[name], variables, origins)
        if (tracer := TRACE.get()) is not None:
            tracer.adjoint(name, chain, {s.name: adjoint[s.name] for s in chain if s.name != loss}, result)
        return result

    for s in reversed(statements[:-1]):
        if s.name in depends:
            known[s.name] = collect(s.name, s.free)
            derived.append(known[s.name])
    first = _first_uses(program, {w for w in wrt if w not in known})
    for w in wrt:
        if w not in known:  # an input, or an intermediate the loss does not use: its first use's indices
            known[w] = collect(w, first[w] if w in first else fresh((), ranks[w]))
            derived.append(known[w])
    for w, given in specs:
        if given is not None:  # the gradient statement takes the indices the caller named
            k = derived.index(known[w])
            derived[k] = known[w] = relabel(known[w], given)
    return Program((*statements, *derived), (loss, *(adjoint[w] for w in wrt)))
