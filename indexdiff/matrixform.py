"""Index notation as matrix notation: ``to_matrix(expr)`` translates an expression (a derivative, say) term by
term into vectors, matrices, transposes, matrix products, Hadamard products, ``diag``, ``tr``, ``sum``, the ones
vector, element-wise functions and the matrix operators, in the expression's layout (first free index = rows).

Each product term is a small tensor network: its factors (translated first) carry at most two indices each. A
summed index in one factor alone is a sum (``A 1``, ``sum(x)``, ``tr(A)``); one shared by one matrix and vectors is
a matrix-vector product (``A (u ∘ v)``); by two matrices and vectors, a product with a diagonal between them
(``Xᵀ diag(d) X``); a pair of factors with the same indices is a Hadamard product, and a product whose row and
column are one index is its diagonal (or, summed, a trace). What is left over the free indices is ``diag(u) M
diag(v)``, an outer product ``u vᵀ`` or a vector. A term with an index shared by three matrices, more than two free
indices, or an operator with no matrix spelling has no matrix form: it is kept in index notation (``[index: ...]``
in the text) and listed in ``MatrixForm.fallback``, never approximated.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import ArgumentError
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Program, Sum, Tensor
from .matrixtree import (
    CALLS,
    Call,
    Eye,
    Fn,
    Had,
    Index,
    M,
    Name,
    Num,
    Ones,
    Power,
    Prod,
    T,
    had,
    marks,
    plus,
    prod,
    shape,
    transpose,
)

__all__ = ["MatrixForm", "ProgramMatrixForm", "to_matrix", "RESERVED"]

Labels = tuple[str, ...]
Item = tuple[M, Labels]

#: Words of the matrix syntax: a tensor named so is never written in matrix form (its term stays index notation).
RESERVED = CALLS | {"eye", "vector", "norm2", "index"}


class _NoForm(Exception):
    """Internal: the node has no matrix form."""


def _oriented(item: Item, target: Labels) -> M:
    """``item``'s tree with its axes in the order ``target`` (the same labels, maybe swapped)."""
    e, labels = item
    if labels == target:
        return e
    assert set(labels) == set(target)
    return transpose(e)


def _tensor(node: Tensor) -> Item:
    if _reserved(node.name):
        raise _NoForm
    idx = node.indices
    if len(idx) == 0:
        return Name(node.name, 0), ()
    if len(idx) == 1:
        return Name(node.name, 1), idx
    if len(idx) == 2:
        if idx[0] == idx[1]:
            return Call("diag", Name(node.name, 2)), idx[:1]
        return Name(node.name, 2), idx
    raise _NoForm


def _reserved(name: str) -> bool:
    from .functions import FUNCTIONS

    return name in RESERVED or name in FUNCTIONS


def _delta(node: Delta) -> Item:
    idx = node.indices
    if len(idx) == 1 or (len(idx) == 2 and idx[0] == idx[1]):
        return Ones(idx[0]), idx[:1]
    if len(idx) == 2:
        return Eye(idx[0]), idx
    raise _NoForm


def _operator(node: Op) -> Item:
    e, labels = translate(node.arg)
    if node.name in ("inv", "det", "logdet"):
        if len(labels) != 2:
            raise _NoForm
        matrix = _oriented((e, labels), tuple(sorted(labels)))  # the operator's matrix: sorted indices (rule 5)
        if node.name == "inv":
            return Call("inv", matrix), tuple(sorted(labels))
        return Call(node.name, matrix), ()
    if node.name not in ("softmax", "logsumexp") or len(node.indices) != 1 or node.indices[0] not in labels:
        raise _NoForm
    j = node.indices[0]
    if len(labels) == 1:
        return Call(node.name, e), (labels if node.name == "softmax" else ())
    row = labels[0] if labels[1] == j else labels[1]
    rows = Call(node.name, _oriented((e, labels), (row, j)))  # row by row
    return rows, ((row, j) if node.name == "softmax" else (row,))


def translate(node: Node) -> Item:
    """``node`` as a matrix-notation tree and the indices of its axes (rows, then columns); raises ``_NoForm``."""
    if isinstance(node, Number):
        return Num(node.value), ()
    if isinstance(node, Tensor):
        return _tensor(node)
    if isinstance(node, Delta):
        return _delta(node)
    if isinstance(node, Func):
        if node.name in RESERVED:  # a user's function named like a matrix operator
            raise _NoForm
        e, labels = translate(node.arg)
        return Fn(node.name, e), labels
    if isinstance(node, Pow):
        e, labels = translate(node.base)
        return Power(e, node.exponent), labels
    if isinstance(node, Mul):
        return _contract([translate(f) for f in node.factors], set())
    if isinstance(node, Sum):
        parts = node.body.factors if isinstance(node.body, Mul) else (node.body,)
        return _contract([translate(f) for f in parts], set(node.indices))
    if isinstance(node, Add):
        items = [translate(t) for t in node.terms]
        target = max((labels for _, labels in items), key=len)
        return _sum([_broadcast(item, target) for item in items]), target
    if isinstance(node, Op):
        return _operator(node)
    raise _NoForm


def _broadcast(item: Item, target: Labels) -> M:
    """``item`` as a term of a sum over ``target``: its axes reordered, a missing axis made by the ones vector (a
    scalar term is added to every entry as it is)."""
    e, labels = item
    if set(labels) == set(target) or not labels:
        return _oriented(item, target) if labels else e
    if len(labels) == 1 and len(target) == 2 and labels[0] in target:
        (i,) = labels
        other = target[0] if target[1] == i else target[1]
        if target[0] == i:
            return prod([e, T(Ones(other))])
        return prod([Ones(other), transpose(e)])
    raise _NoForm


def _same_sets(items: list[Item], summed: set[str]) -> list[Item]:
    """Factors over the same indices multiplied element-wise (Hadamard), except two matrices that only close a
    loop of summed indices between themselves (those make a trace, ``tr(A B)``)."""
    groups: dict[frozenset[str], list[int]] = {}
    for k, (_, labels) in enumerate(items):
        groups.setdefault(frozenset(labels), []).append(k)
    out: list[Item] = []
    done: set[int] = set()
    for key, members in groups.items():
        if len(members) == 1:
            continue
        loop = len(members) == 2 and len(key) == 2 and key <= summed
        loop = loop and all(sum(i in labels for _, labels in items) == 2 for i in key)
        if loop or not key:
            continue
        first = items[members[0]][1]
        out.append((had([_oriented(items[k], first) for k in members]), first))
        done.update(members)
    return [item for k, item in enumerate(items) if k not in done] + out


def _sum_one(item: Item, j: str, summed: set[str], items: list[Item]) -> Item:
    """``item`` summed over ``j``, an index no other factor has."""
    e, labels = item
    if len(labels) == 1:
        if isinstance(e, Call) and e.name == "diag" and shape(e.arg) == (True, True):
            return Call("tr", e.arg), ()
        if isinstance(e, Had) and len(e.factors) >= 2:  # uᵀ v, with whichever first prints fewer transposes
            options = [
                prod([transpose(e.factors[k]), had([f for m, f in enumerate(e.factors) if m != k])])
                for k in range(len(e.factors))
            ]
            return min(options, key=marks), ()
        return Call("sum", e), ()
    other = _other(labels, j)
    if other in summed and sum(other in ls for _, ls in items) == 1:
        return Call("sum", e), ()
    return prod([_oriented(item, (other, j)), Ones(j)]), (other,)


def _through(j: str, mats: list[Item], vecs: list[Item]) -> Item:
    """The factors sharing the summed index ``j``: one or two matrices and vectors, as a product."""
    middle = had([e for e, _ in vecs]) if vecs else None
    if len(mats) == 1:
        a = _other(mats[0][1], j)
        assert middle is not None
        return prod([_oriented(mats[0], (a, j)), middle]), (a,)
    options = []
    for first, second in (mats, mats[::-1]):  # A B or Bᵀ Aᵀ: whichever prints fewer transposes
        a, b = _other(first[1], j), _other(second[1], j)
        chain = [_oriented(first, (a, j)), _oriented(second, (j, b))]
        if middle is not None:
            chain.insert(1, Call("diag", middle))
        options.append((marks(prod(chain)), prod(chain), a, b))
    _, product, a, b = min(options, key=lambda o: o[0])
    if a == b:  # a closed chain: its diagonal (a trace once a is summed)
        return Call("diag", product), (a,)
    return product, (a, b)


def _other(labels: Labels, j: str) -> str:
    return labels[0] if labels[1] == j else labels[1]


def _contract(items: list[Item], summed: set[str]) -> Item:
    """The product of ``items`` summed over ``summed`` (one term's tensor network)."""
    scalars: list[M] = []
    for j in sorted(summed):
        if not any(j in labels for _, labels in items):  # Σ_j of what lacks j: times j's length
            scalars.append(Call("sum", Ones(j)))
    while True:
        scalars.extend(e for e, labels in items if not labels)
        items = _same_sets([item for item in items if item[1]], summed)
        live = sorted(j for j in summed if any(j in labels for _, labels in items))
        if not live:
            break
        holders = {j: [k for k, (_, labels) in enumerate(items) if j in labels] for j in live}
        j = min(live, key=lambda i: len(holders[i]))
        mine = [items[k] for k in holders[j]]
        rest = [item for k, item in enumerate(items) if k not in holders[j]]
        if len(mine) == 1:
            items = [*rest, _sum_one(mine[0], j, summed, items)]
            continue
        mats = [item for item in mine if len(item[1]) == 2]
        vecs = [item for item in mine if len(item[1]) == 1]
        if not mats or len(mats) > 2:
            raise _NoForm
        items = [*rest, _through(j, mats, vecs)]
    mats = [item for item in items if len(item[1]) == 2]
    vecs = [item for item in items if len(item[1]) == 1]
    if len(mats) > 1 or len(vecs) > 2 or any(len(labels) > 2 for _, labels in items):
        raise _NoForm
    if mats:
        m, (r, c) = mats[0]
        rows = [e for e, labels in vecs if labels == (r,)]
        cols = [e for e, labels in vecs if labels == (c,)]
        if len(rows) + len(cols) != len(vecs):
            raise _NoForm
        chain = [*scalars, *(Call("diag", v) for v in rows), m, *(Call("diag", v) for v in cols)]
        return prod(chain), (r, c)
    if len(vecs) == 2:
        return prod([*scalars, vecs[0][0], transpose(vecs[1][0])]), (vecs[0][1][0], vecs[1][1][0])
    if vecs:
        return prod([*scalars, vecs[0][0]]), vecs[0][1]
    return prod(scalars), ()


def _factored(terms: list[M], last: bool) -> list[M]:
    """Terms that end (``last``) or start with the same factor, with prefixes of one shape, written once:
    ``A x + Aᵀ x`` is ``(A + Aᵀ) x``."""
    groups: dict[M, list[int]] = {}
    for k, t in enumerate(terms):
        if isinstance(t, Prod) and len(t.factors) >= 2 and shape(t.factors[-1 if last else 0]) != (False, False):
            groups.setdefault(t.factors[-1 if last else 0], []).append(k)
    out: list[M] = []
    used: set[int] = set()
    for k, t in enumerate(terms):
        if k in used:
            continue
        members = groups.get(t.factors[-1 if last else 0], []) if isinstance(t, Prod) else []
        rests = [prod(list(terms[m].factors[:-1] if last else terms[m].factors[1:])) for m in members]
        if len(members) >= 2 and len({shape(r) for r in rests}) == 1 and shape(rests[0]) == (True, True):
            common = terms[members[0]].factors[-1 if last else 0]
            rests.sort(key=marks)
            out.append(prod([plus(rests), common] if last else [common, plus(rests)]))
            used.update(members)
        else:
            out.append(t)
            used.add(k)
    return out


def _coefficient(t: M) -> Fraction:
    if isinstance(t, Num):
        return t.value
    return t.factors[0].value if isinstance(t, Prod) and isinstance(t.factors[0], Num) else Fraction(1)


def _sum(terms: list[M]) -> M:
    """A sum written short: common first and last factors once, and a number every term has as a factor in
    front (``2 h - 2 y`` is ``2 (h - y)``)."""
    c = abs(_coefficient(terms[0]))
    if len(terms) >= 2 and c not in (0, 1) and all(abs(_coefficient(t)) == c for t in terms):
        return prod([Num(c), _sum([prod([Num(1 / c), t]) for t in terms])])
    return plus(_factored(_factored(terms, last=True), last=False))


@dataclass(frozen=True)
class MatrixForm:
    """An expression in matrix notation: ``tree`` in the layout of ``free`` (first index = rows).

    ``fallback`` lists, in index notation, the terms that have no matrix form (printed as ``[index: ...]``).
    ``text`` and ``latex`` are the printed forms (NumPy code: ``ix.codegen(e, format="numpy")``); Jupyter shows
    the LaTeX.
    """

    tree: M
    free: Labels
    fallback: tuple[str, ...] = ()
    name: str | None = None

    @property
    def text(self) -> str:
        from .matrixprint import to_text

        return to_text(self.tree)

    @property
    def latex(self) -> str:
        from .matrixprint import to_latex

        return to_latex(self.tree)

    def __str__(self) -> str:
        return self.text

    def _repr_latex_(self) -> str:
        return f"$${self.latex}$$"


@dataclass(frozen=True)
class ProgramMatrixForm:
    """A program in matrix notation, statement by statement (``name = ...`` lines)."""

    statements: tuple[MatrixForm, ...]

    @property
    def fallback(self) -> tuple[str, ...]:
        return tuple(t for s in self.statements for t in s.fallback)

    @property
    def text(self) -> str:
        return "\n".join(f"{s.name} = {s.text}" for s in self.statements)

    @property
    def latex(self) -> str:
        from .printer import latex_name

        rows = [rf"{latex_name(s.name or 'f')} &= {s.latex}" for s in self.statements]
        return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"

    def __str__(self) -> str:
        return self.text

    def _repr_latex_(self) -> str:
        return f"$${self.latex}$$"


def _term(node: Node, expr: Expr) -> Expr:
    return Expr(node, expr.free, None, expr.variables, expr.origins)


def _expr_form(expr: Expr) -> MatrixForm:
    free = expr.free
    if len(free) > 2:  # no matrix holds it: the whole expression stays index notation
        whole = _term(expr.node, expr)
        return MatrixForm(Index(str(whole), len(free), whole), free, (str(whole),), expr.name)
    node = expr.node
    parts: list[M] = []
    fallback: list[str] = []
    for t in node.terms if isinstance(node, Add) else (node,):
        try:
            parts.append(_broadcast(translate(t), free))
        except _NoForm:
            term = _term(t, expr)
            parts.append(Index(str(term), len(free), term))
            fallback.append(str(term))
    return MatrixForm(_sum(parts), free, tuple(fallback), expr.name)


def to_matrix(expr: Expr | Program) -> MatrixForm | ProgramMatrixForm:
    """``expr`` in matrix notation (a program: each statement); terms without a matrix form stay index notation
    and are listed in ``.fallback``."""
    if isinstance(expr, Program):
        return ProgramMatrixForm(tuple(_expr_form(s) for s in expr.statements))
    if not isinstance(expr, Expr):
        raise ArgumentError(
            f"to_matrix takes an Expr or a Program, got {type(expr).__name__}",
            hint='parse the text first: ix.matrix(ix.parse("x_i A_ij x_j"))',
        )
    return _expr_form(expr)
