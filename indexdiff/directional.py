"""Directional derivatives: ``ix.diff(e, "w", along="v")`` is ∂e/∂w_K v_K, an expression with e's indices.

``along`` names a new tensor v with w's shape. A derivative contracted with v is never formed as the full
derivative first: the raw derivative ∂e/∂w_K (unsimplified) is multiplied by v_K and summed over K, and that
product is simplified as a whole, so each of its terms is one contraction that opt_einsum orders (for the
logistic loss's Hessian-vector product, ``X_il v_l`` first: O(n·d), never the d×d Hessian).

With several variables, ``along`` is one name (the *last* differentiation is directional: ``diff(e, "w", "w",
along="v")`` is ∂/∂w_k (∂e/∂w_l v_l), the Hessian-vector product H v, the JVP of the gradient) or one entry per
variable, each a name or None (``along=("u", "v")`` gives u_k H_kl v_l, a scalar). Derivatives commute, so the
contracted ones are taken first: a gradient of a directional derivative keeps v in a product with the data, where
a directional derivative of a gradient would contract a Hessian-sized sum. The result's indices are e's, then the
new indices of the variables not contracted, in the order given and named as ``diff`` names them.

A Program is differentiated statement by statement, contracted variables first as for an expression: a contracted
one adds one tangent statement ``d<S><v>`` per statement S that depends on the variable (forward mode: S's
Jacobians applied to the tangents it uses and to v), the last being the directional derivative of the program's
output; a variable not contracted is then ``forward.derivative_program``'s step (reverse mode for a scalar: an HVP
is the gradient program of the directional derivative, linear in the program's length).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .diff import _wrt, derivative, with_indices
from .errors import ArgumentError, DiffError, IndexDiffError, expect_expr, expect_specs
from .expr import ZERO, Add, Expr, Mul, Node, Program, Sum, Tensor, deep
from .names import all_indices, children, fresh, rebuild, separate, share, tensor_names
from .simplify import simplify

__all__ = ["directional", "along_names", "spread", "step_along"]

Along = str | Sequence[str | None]


def along_names(wrt: Sequence[str], along: Along, ranks: Mapping[str, int], taken: set[str]) -> tuple[str | None, ...]:
    """``along`` as one entry per variable of ``wrt`` (None: not contracted). Each name must be a new tensor
    name (not in ``taken``, the tensors and statements already there); a name used for several variables needs
    them to have one rank (``ranks``: the variables' ranks)."""
    if isinstance(along, str):
        entries: tuple[str | None, ...] = (*([None] * (len(wrt) - 1)), along)
    elif isinstance(along, Sequence) and all(a is None or isinstance(a, str) for a in along):
        entries = tuple(along)
        if len(entries) != len(wrt):
            raise ArgumentError(
                f"along has {len(entries)} entries but there are {len(wrt)} variables to differentiate by",
                hint="give one name (the last differentiation is directional) or one entry per variable, "
                "None where a derivative is not contracted: along=(None, 'v')",
            )
        if all(a is None for a in entries):
            raise ArgumentError("along names no tensor", hint="name one, e.g. along='v', or leave along out")
    else:
        raise ArgumentError(
            f"along must be a tensor name or a sequence of names and None, got {type(along).__name__}",
            hint="e.g. along='v' or along=('u', 'v')",
        )
    shapes: dict[str, tuple[str, int]] = {}
    for spec, name in zip(wrt, entries):
        if name is None:
            continue
        _check_name(name, taken)
        variable = spec.split("_")[0].strip()
        if variable not in ranks:
            continue  # differentiating reports the unknown variable
        first = shapes.setdefault(name, (variable, ranks[variable]))
        if first[1] != ranks[variable]:
            raise DiffError(
                f"along names '{name}' for '{first[0]}' ({first[1]} indices) and for '{variable}' "
                f"({ranks[variable]} indices): one tensor cannot have both shapes",
                text=name,
                pos=0,
                end=len(name),
                hint="give each variable's direction its own name, e.g. along=('u', 'v')",
            )
    return tuple(None if a is None else a.strip() for a in entries)


def _check_name(name: str, taken: set[str]) -> None:
    from .parser import parse

    text = name.strip()
    try:
        parsed = parse(text) if text else None
    except IndexDiffError:
        parsed = None
    if not (isinstance(parsed, Expr) and parsed.node == Tensor(text, ()) and parsed.name is None):
        raise DiffError(
            f"along must name a new tensor, got {name!r}",
            text=name,
            pos=0,
            end=max(1, len(name)),
            hint="a letter, then letters or digits; no indices, not a function name: along='v'",
        )
    if text in taken:
        raise DiffError(
            f"along names '{text}', which is already a tensor of the expression",
            text=text,
            pos=0,
            end=len(text),
            hint=f"the direction is a new tensor with the variable's shape; the names in use are "
            f"{', '.join(sorted(taken))}",
        )


def _contract(d: Node, new: tuple[str, ...], v: str) -> Node:
    """Σ_K d_K v_K over the new indices K (a scalar variable: d v)."""
    tangent = Tensor(v, new)
    return Sum(tuple(sorted(new)), Mul((d, tangent))) if new else Mul((d, tangent))


_SPREAD_TERMS = 8  # an Add of at most this many terms is distributed over the product it stands in


def spread(node: Node) -> Node:
    """``node`` with every contraction over an outer product of a sum distributed: ``Σ_S a (b + c)``, where the
    sum's free indices include a summed one and no other factor carries all of them (so the sum would be an
    intermediate larger than every operand), becomes ``Σ_S a b + Σ_S a c``, each one contraction in opt_einsum's
    order. A Hessian-vector product so keeps v in a product with the data (``V_lm x_bm`` first), never a
    Hessian-sized sum; ``σ (1 - σ)`` stays (σ carries the sum's indices)."""
    done: dict[int, Node] = {}

    def walk(n: Node) -> Node:
        found = done.get(id(n))
        if found is None:
            parts = children(n)
            found = _spread_sum(rebuild(n, tuple(walk(p) for p in parts)) if parts else n, walk)
            done[id(n)] = found
        return found

    return walk(node)


def _spread_sum(node: Node, walk: Callable[[Node], Node]) -> Node:
    if not (isinstance(node, Sum) and isinstance(node.body, Mul)):
        return node
    summed = frozenset(node.indices)
    factors = node.body.factors
    for k, f in enumerate(factors):
        if not isinstance(f, Add) or not f.free & summed or len(f.terms) > _SPREAD_TERMS:
            continue
        rest = factors[:k] + factors[k + 1 :]
        if any(f.free <= g.free for g in rest):
            continue
        carried = frozenset().union(*(g.free for g in rest))
        if any(not summed <= carried | t.free for t in f.terms):
            continue  # a term would lose a summed index's length
        terms = tuple(Sum(node.indices, Mul((*rest, t))) for t in f.terms)
        return walk(simplify(Add(terms), node.free))
    return node


def _expr_step(expr: Expr, spec: str, v: str, reserved: set[str]) -> Expr:
    name, new = _wrt(expr, spec)
    if (set(new) & reserved or v in new) and "_" not in spec:  # summed apart from the names kept for later
        used = all_indices(expr.node) | set(expr.free) | tensor_names(expr.node) | reserved | {v}
        new = fresh(used, len(new))
    free = frozenset(expr.free)
    scope = free | set(new)
    declared = expr.symmetric & tensor_names(expr.node)
    if declared:  # simplified with S_ij = S_ji; by a symmetric S, sym(∂e/∂S) contracted with v (symmetric.py)
        from .symmetric import derivative_by, within

        d = derivative_by(declared, share(separate(expr.node, scope)), name, new, scope)
        node = within(declared, with_indices, _contract(d, new, v), free)
    else:
        raw = derivative(share(separate(expr.node, scope)), name, new)
        node = with_indices(_contract(raw, new, v), free)
    variables = {**expr.variables, v: expr.variables[name]}
    return Expr(node, expr.free, None, variables, expr.origins, expr.symmetric)


def _program_step(program: Program, spec: str, v: str) -> Program:
    from .forward import _variable, needed
    from .jacobian import axis_origin, forward_keys, jacobian, program_indices, reuse, unique_name
    from .names import tensors

    x, _ = _variable(program, spec)
    statements = needed(program)
    out = statements[-1]
    ranks = {**program.inputs, **{s.name: len(s.free) for s in statements if s.name is not None}}
    taken = set(program.names) | set(program.inputs) | {v}
    letters = program_indices(statements)
    forward = forward_keys(statements)
    defined = {s.name: s for s in statements}
    memo: dict[tuple[str, int], tuple[str, int]] = {}
    tangent: dict[str, str] = {}
    derived: list[Expr] = []
    for s in statements:
        assert s.name is not None
        uses = [h for h in s.variables if h in tangent]
        if x not in s.variables and not uses and s is not out:
            continue
        terms: list[Node] = []
        for h, direction in [(x, v)] * (x in s.variables) + [(h, tangent[h]) for h in uses]:
            k = fresh(letters | {v}, ranks[h])
            terms.append(_contract(jacobian(s, h, k, simplified=False), k, direction))
        free = frozenset(s.free)
        body = with_indices(Add(tuple(terms)), free) if terms else ZERO
        reused = reuse(body, forward)
        body = body if reused is body else with_indices(reused, free)
        tangent[s.name] = unique_name(f"d{s.name}{v}", taken)
        origins = {i: axis_origin(s.name, a, defined, memo) for a, i in enumerate(s.free)}
        variables = {t.name: len(t.indices) for t in tensors(body)} | {t: ranks[t] for t, _ in origins.values()}
        variables[v] = ranks[x]
        derived.append(Expr(body, s.free, tangent[s.name], variables, origins))
    return Program((*statements, *derived))


def step_along(expr: Expr, spec: str, v: str) -> Expr:
    """The directional derivative of ``expr`` by ``spec`` along ``v``, simplified with its sums spread (``v`` may
    be a tensor of ``expr`` already: the next order of a Taylor polynomial)."""
    expr = _expr_step(expr, spec, v, set())
    return _spread_expr(expr)


def _spread_expr(expr: Expr) -> Expr:
    from .symmetric import within

    declared = expr.symmetric & tensor_names(expr.node)
    node = within(declared, spread, expr.node)
    if node is expr.node:
        return expr
    node = within(declared, with_indices, node, frozenset(expr.free))  # like terms from different sums merged
    return Expr(node, expr.free, expr.name, expr.variables, expr.origins, expr.symmetric)


def _named(expr: Expr, wrt: tuple[str, ...], along: tuple[str | None, ...]) -> tuple[tuple[str, ...], set[str]]:
    """``wrt`` with the new indices of the derivatives not contracted named as ``diff`` names them in order
    (``x`` -> ``x_k``), so that differentiating them last keeps those names; and the names so taken."""
    specs, reserved = [], set()
    for spec, v in zip(wrt, along):
        name = spec.strip()
        if v is None and name in expr.variables:
            used = all_indices(expr.node) | set(expr.free) | tensor_names(expr.node) | reserved
            new = fresh(used | {a for a in along if a is not None}, expr.variables[name])
            reserved.update(new)
            spec = f"{name}_{{{','.join(new)},}}" if len(new) == 1 else f"{name}_{{{','.join(new)}}}" if new else name
        specs.append(spec)
    return tuple(specs), reserved


def _directional(expr: Expr | Program, wrt: tuple[str, ...], along: tuple[str | None, ...]) -> Expr | Program:
    from .diff import diff

    order = sorted(range(len(wrt)), key=lambda k: along[k] is None)  # contracted first (module docstring)
    reserved: set[str] = set()
    if isinstance(expr, Expr):
        wrt, reserved = _named(expr, wrt, along)
    for k in order:
        spec, v = wrt[k], along[k]
        if isinstance(expr, Program):
            expr = diff(expr, spec) if v is None else _program_step(expr, spec, v)
            continue
        try:
            expr = _spread_expr(diff(expr, spec) if v is None else _expr_step(expr, spec, v, reserved))
        except IndexDiffError as err:  # raised while simplifying (a number out of range, a zero divisor)
            raise err.with_source(str(expr)) from None
    return expr


def directional(expr: Expr | Program, wrt: tuple[str, ...], along: Along) -> Expr | Program:
    """∂expr/∂wrt[0]/... with the derivatives ``along`` names contracted with those tensors (module docstring).

    >>> import indexdiff as ix
    >>> print(ix.diff(ix.parse("x_i A_ij x_j"), "x", along="v"))
    v_k (A_ik x_i + A_kj x_j)
    >>> print(ix.diff(ix.parse("x_i A_ij x_j"), "x", "x", along="v"))
    A_lk v_l + A_kl v_l
    """
    expect_expr(expr, "diff")
    expect_specs(wrt, "diff")
    if not wrt:
        raise DiffError("no variable to differentiate by", hint="pass one, e.g. ix.diff(e, 'x', along='v')")
    if isinstance(expr, Program):
        if not expr.statements:
            raise DiffError("the program has no statements", hint="write at least one statement: L = ...")
        ranks = {**expr.inputs, **{s.name: len(s.free) for s in expr.statements if s.name is not None}}
        taken = set(ranks)
    else:
        ranks = dict(expr.variables)
        taken = set(ranks) | tensor_names(expr.node)
    entries = along_names(wrt, along, ranks, taken)
    return deep(_directional, expr, tuple(wrt), entries)


def along_options(
    chains: Sequence[Sequence[str]], along: Sequence[str], fmt: str, steps: bool = False
) -> list[Along | None]:
    """The command line's ``--along`` for each ``--wrt`` chain: given once, it applies to every chain; given once
    per ``--wrt``, in order. Each is one name (the chain's last differentiation is directional) or a comma list
    with one name per variable of the chain (an empty entry: that derivative is not contracted)."""
    if not along:
        return [None] * len(chains)
    shown = " ".join(f"--along {a}" for a in along)
    if not chains:
        raise IndexDiffError("--along needs --wrt", shown, hint="e.g. --wrt w,w --along v (a Hessian-vector product)")
    if len(along) not in (1, len(chains)):
        raise IndexDiffError(
            f"{len(along)} --along for {len(chains)} --wrt",
            shown,
            hint="give --along once (it applies to every --wrt) or once per --wrt, in order",
        )
    if steps:
        raise IndexDiffError(
            "--steps shows full derivatives; it is not available with --along",
            shown,
            hint="drop --along to see the steps of the derivative (--wrt w,w --steps), or --steps to see the "
            "directional derivative",
        )
    if fmt in ("python", "latex", "numpy"):
        raise IndexDiffError(
            f"--format {fmt} is not available with --along",
            shown,
            hint="print index notation, einsum, json, matrix or latex-matrix; in Python, "
            "ix.compile(ix.diff(e, 'w', 'w', along='v')) runs it, and ix.codegen of that expression writes its code",
        )
    out: list[Along | None] = []
    for chain, text in zip(chains, along * len(chains) if len(along) == 1 else along):
        names = [a.strip() for a in text.split(",")]
        if len(names) == 1:
            out.append(names[0] or None)  # --along "" beside others: this --wrt is not contracted
        elif len(names) == len(chain):
            out.append(tuple(a or None for a in names))
        else:
            raise IndexDiffError(
                f"--along {text} gives {len(names)} names for the {len(chain)} variables of --wrt {','.join(chain)}",
                text,
                hint="give one name (the last differentiation is directional) or one per variable: "
                "--wrt w,w --along u,v",
            )
    return out


def along_label(chain: Sequence[str], along: Along | None) -> str:
    """How the command line labels a derivative: ``d/dw/dw``, ``d/dw/dw along v``."""
    label = f"d/d{'/d'.join(chain)}"
    if along is None:
        return label
    return f"{label} along {along if isinstance(along, str) else ','.join(a or '-' for a in along)}"
