"""Derivatives of programs, statement by statement: the result is a program again, linear in the input's length.

``derivative_program(p, "x")`` differentiates p's last statement (its output).  For a scalar output it is the
reverse-mode gradient program (``ix.grad``: one adjoint statement per intermediate, then ``dx``).  Otherwise each
statement S that depends on x gets a tangent statement by forward mode and the δ rule,
``dSdx_FN = Σ_K ∂S_F/∂h_K dhdx_KN + ∂S_F/∂x_N`` over the statements h that S uses, with forward values reused by
name.  Either way the last statement is the derivative, with the output's indices then x's new ones.  Nothing is
substituted, so every statement stays the size of the one it derives from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from .diff import _wrt, with_indices
from .errors import DiffError, IndexDiffError
from .expr import Add, Expr, Mul, Node, Number, Program, Sum, Tensor, deep
from .jacobian import axis_origin, forward_keys, jacobian, program_indices, reuse, unique_name
from .names import fresh, tensors
from .program import used
from .reverse import grad, relabel

__all__ = ["derivative_program", "needed", "shape_expr", "check_parts"]


def needed(program: Program, output: str | None = None) -> tuple[Expr, ...]:
    """The statements ``output`` (default: the last) depends on, in order, ending with it."""
    statements = program.statements
    if output is not None:
        if output not in program.names:
            raise IndexDiffError(
                f"the program defines no '{output}'", str(program), hint=f"choose one of: {', '.join(program.names)}"
            )
        statements = statements[: program.names.index(output) + 1]
    return used(statements, (statements[-1].name,))


def _variable(program: Program, spec: str) -> tuple[str, tuple[str, ...]]:
    """``"x"`` or ``"x_k"`` -> a tensor of the program and the derivative's new indices. An intermediate is a
    variable as in ``ix.grad``: the statements after it see it as an input (its own definition is held fixed)."""
    out = program.statements[-1]
    ranks = {**program.inputs, **{s.name: len(s.free) for s in program.statements[:-1] if s.name is not None}}
    letters = program_indices(program.statements)
    stub = Expr(Tensor("#", tuple(sorted(letters))), out.free, None, ranks)
    return _wrt(stub, spec)


def _zero(out: Expr, name: str, x: str, rank: int, new: tuple[str, ...]) -> Expr:
    origins = {i: axis_origin(out.name, axis, {out.name: out}) for axis, i in enumerate(out.free)}
    origins.update({n: (x, k) for k, n in enumerate(new)})
    return Expr(Number(Fraction(0)), (*out.free, *new), name, {x: rank}, origins)


def _step(program: Program, spec: str) -> Program:
    x, new = _variable(program, spec)
    statements = needed(program)
    out = statements[-1]
    assert out.name is not None
    ranks = {**program.inputs, **{s.name: len(s.free) for s in statements}}
    rank = ranks[x]
    taken = set(program.names) | set(program.inputs)
    if not any(x in s.variables for s in statements):
        zero = _zero(out, unique_name(f"d{out.name}d{x}", taken), x, rank, new)
        return Program((*statements, zero))
    if not out.free:  # a scalar: reverse mode costs about what the forward pass costs
        gradient = grad(Program(statements), out.name, [x])
        last = relabel(gradient.statements[-1], new)
        return Program((*gradient.statements[:-1], last))
    letters = program_indices(statements) | set(new)
    # The new indices of every tangent but the output's: the output's own when no statement uses those letters.
    within = new if not set(new) & program_indices(statements) else fresh(letters, rank)
    forward = forward_keys(statements)
    tangent: dict[str, str] = {}
    defined = {s.name: s for s in statements}
    memo: dict[tuple[str, int], tuple[str, int]] = {}
    derived: list[Expr] = []
    for s in statements:
        uses = [h for h in s.variables if h in tangent]
        if x not in s.variables and not uses:
            continue
        assert s.name is not None
        n_s = new if s is out else within
        # Each Jacobian raw: the statement's tangent is simplified once, as a whole.
        terms: list[Node] = [jacobian(s, x, n_s, simplified=False)] if x in s.variables else []
        for h in uses:
            k = fresh(letters | set(within), ranks[h])
            chain = Mul((jacobian(s, h, k, simplified=False), Tensor(tangent[h], (*k, *n_s))))
            terms.append(Sum(tuple(sorted(k)), chain) if k else chain)
        free = frozenset((*s.free, *n_s))
        body = with_indices(terms[0] if len(terms) == 1 else Add(tuple(terms)), free)
        reused = reuse(body, forward)
        body = body if reused is body else with_indices(reused, free)
        tangent[s.name] = unique_name(f"d{s.name}d{x}", taken)
        origins = {i: axis_origin(s.name, a, defined, memo) for a, i in enumerate(s.free)}
        origins.update({n: (x, a) for a, n in enumerate(n_s)})
        variables = {t.name: len(t.indices) for t in tensors(body)} | {t: ranks[t] for t, _ in origins.values()}
        derived.append(Expr(body, (*s.free, *n_s), tangent[s.name], variables, origins))
    return Program((*statements, *derived))


def derivative_program(program: Program, *wrt: str) -> Program:
    """∂(the program's last statement)/∂wrt[0]/∂wrt[1]... as a program whose last statement is the derivative.

    >>> import indexdiff as ix
    >>> print(ix.diff(ix.parse("h_i = tanh(W_ij x_j); y_i = h_i + x_i"), "x"))
    h_i = tanh(W_ij x_j)
    y_i = h_i + x_i
    dhdx_ik = W_ik (1 - h_i^2)
    dydx_ik = dhdx_ik + δ_ik
    """
    if not program.statements:
        raise DiffError("the program has no statements", hint="write at least one statement: L = ...")
    if not wrt:
        raise DiffError("no variable to differentiate by", hint="pass one, e.g. ix.diff(program, 'x')")
    for spec in wrt:
        program = deep(_step, program, spec)  # one call: the cyclic collector stays paused for the whole step
    return Program(program.statements)


def shape_expr(program: Program) -> Expr:
    """One expression holding every statement (and the tensor it defines), for choosing shapes of random data:
    index letters name the same size in every statement, as ``--dims`` gives them."""
    everything = Mul(tuple(Mul((Tensor(s.name, s.free), s.node)) for s in program.statements if s.name))
    return Expr(everything, (), None, program.inputs, {})


def check_parts(
    program: Program, wrt: Sequence[str] = ()
) -> tuple[Program, Expr, Callable[..., Any], Callable[[Program], Expr]]:
    """What ``ix.check`` needs for a program: the program to check (an intermediate in ``wrt`` becomes an input,
    its definition cut, as the derivative holds it fixed), the expression random data is made for, how a program
    and its derivative programs are evaluated (``value(p, arrays, dims)``: compiled once, then run statement by
    statement at each perturbed input), and a program's output statement."""
    from .compile import compile

    cut = {str(w).strip().split("_")[0] for w in wrt} & set(program.names[:-1])
    if cut:
        program = Program(tuple(s for s in program.statements if s.name not in cut))
    compiled: dict[int, tuple[Program, Any]] = {}

    def value(p: Program, arrays: Mapping[str, Any], dims: Mapping[str, int]) -> Any:
        if id(p) not in compiled:
            compiled[id(p)] = (p, compile(Program(p.statements), dims=dims))
        f = compiled[id(p)][1]
        return f(**{name: arrays[name] for name in f.inputs})

    return program, shape_expr(program), value, lambda p: p.statements[-1]
