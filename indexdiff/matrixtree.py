"""The matrix-notation tree: scalars, column vectors and matrices combined by matrix products, transposes,
Hadamard products, element-wise functions and matrix operators. ``matrixform`` builds it from index notation,
``matrixprint`` writes it as text and LaTeX, ``matrixnumpy`` as NumPy code.

A node's shape is ``(rows, cols)``: each True when that axis is present, so a scalar is ``(False, False)``, a
column vector ``(True, False)``, a row vector (only ever a transposed column) ``(False, True)`` and a matrix
``(True, True)``. Transposes are pushed inward where that prints fewer of them: ``(xᵀ A)ᵀ`` is ``Aᵀ x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "M",
    "Name",
    "Num",
    "Eye",
    "Ones",
    "T",
    "Prod",
    "Had",
    "Power",
    "Plus",
    "Fn",
    "Call",
    "Index",
    "shape",
    "marks",
    "children",
    "transpose",
    "prod",
    "had",
    "plus",
    "negative",
    "negated",
    "CALLS",
]

Shape = tuple[bool, bool]


class M:
    """Base of the matrix-notation nodes (immutable, compared by structure)."""

    __slots__ = ()


@dataclass(frozen=True)
class Name(M):
    """A tensor of rank 0 (scalar), 1 (column vector) or 2 (matrix, rows = its first index)."""

    name: str
    rank: int


@dataclass(frozen=True)
class Num(M):
    value: Fraction


@dataclass(frozen=True)
class Eye(M):
    """The identity matrix; ``index`` is an index of its length (for code that needs the size)."""

    index: str


@dataclass(frozen=True)
class Ones(M):
    """The all-ones column vector along ``index``."""

    index: str


@dataclass(frozen=True)
class T(M):
    arg: M


@dataclass(frozen=True)
class Prod(M):
    """A matrix product (juxtaposition); scalar factors are scalar multiples."""

    factors: tuple[M, ...]


@dataclass(frozen=True)
class Had(M):
    """An element-wise product; a factor ``Power(b, e)`` with e < 0 is a division (``./``)."""

    factors: tuple[M, ...]


@dataclass(frozen=True)
class Power(M):
    """An element-wise power with an exact exponent."""

    base: M
    exponent: Fraction


@dataclass(frozen=True)
class Plus(M):
    """A sum; a scalar term is added to every entry of the others."""

    terms: tuple[M, ...]


@dataclass(frozen=True)
class Fn(M):
    """An element-wise function (the function table's, or a user's)."""

    name: str
    arg: M


#: Calls that work on the whole vector or matrix: diag, tr, sum, det, logdet, inv, softmax, logsumexp.
CALLS = frozenset({"diag", "tr", "sum", "det", "logdet", "inv", "softmax", "logsumexp"})


@dataclass(frozen=True)
class Call(M):
    """``name(arg)`` for a name of ``CALLS``: softmax and logsumexp of a matrix work on each row."""

    name: str
    arg: M


@dataclass(frozen=True)
class Index(M):
    """A term with no matrix form, kept in index notation: ``text`` (axes in the result's order)."""

    text: str
    rank: int
    expr: object  # the term as an index-notation Expr (axes in the result's order)


def shape(e: M) -> Shape:
    """``(rows, cols)`` presence of ``e``'s value."""
    if isinstance(e, Name):
        return (e.rank >= 1, e.rank == 2)
    if isinstance(e, Num):
        return (False, False)
    if isinstance(e, Eye):
        return (True, True)
    if isinstance(e, Ones):
        return (True, False)
    if isinstance(e, T):
        r, c = shape(e.arg)
        return (c, r)
    if isinstance(e, Prod):
        acc = (False, False)
        for f in e.factors:
            s = shape(f)
            if s == (False, False):
                continue
            acc = s if acc == (False, False) else (acc[0], s[1])
        return acc
    if isinstance(e, (Had, Plus)):
        parts = e.factors if isinstance(e, Had) else e.terms
        return next((s for s in map(shape, parts) if s != (False, False)), (False, False))
    if isinstance(e, (Power, Fn)):
        return shape(e.base if isinstance(e, Power) else e.arg)
    if isinstance(e, Call):
        r, c = shape(e.arg)
        if e.name == "diag":
            return (True, not c)
        if e.name in ("tr", "sum", "det", "logdet"):
            return (False, False)
        if e.name == "logsumexp":
            return (c, False) if r else (False, False)
        return (r, c)
    assert isinstance(e, Index)
    return (e.rank >= 1, e.rank == 2)


def children(e: M) -> tuple[M, ...]:
    """The nodes ``e`` is built from."""
    if isinstance(e, (Prod, Had)):
        return e.factors
    if isinstance(e, Plus):
        return e.terms
    if isinstance(e, Power):
        return (e.base,)
    if isinstance(e, (Fn, Call, T)):
        return (e.arg,)
    return ()


def marks(e: M) -> int:
    """How many transposes ``e`` prints (the cost transposing minimizes)."""
    return int(isinstance(e, T)) + sum(marks(p) for p in children(e))


def _symmetric(e: M) -> bool:
    if isinstance(e, (Eye, Num, Index)) or shape(e) == (False, False):
        return True
    return isinstance(e, Call) and e.name == "diag" and shape(e.arg) == (True, False)


def _pushed(e: M) -> M | None:
    """``e``ᵀ with the transpose moved inside, or None where it cannot move."""
    if isinstance(e, Prod):
        return prod([transpose(f) for f in reversed(e.factors)])
    if isinstance(e, Had):
        return had([transpose(f) for f in e.factors])
    if isinstance(e, Plus):
        return plus([transpose(t) for t in e.terms])
    if isinstance(e, Power):
        return Power(transpose(e.base), e.exponent)
    if isinstance(e, Fn):
        return Fn(e.name, transpose(e.arg))
    if isinstance(e, Call) and e.name == "inv":
        return Call("inv", transpose(e.arg))
    return None


def transpose(e: M) -> M:
    """``e``ᵀ, written with as few transposes as the rules allow."""
    if _symmetric(e):
        return e
    if isinstance(e, T):
        return e.arg
    pushed = _pushed(e)
    if pushed is not None and marks(pushed) <= marks(e) + 1:
        return pushed
    if isinstance(e, Prod) and shape(e.factors[0]) == (False, False):  # -2 (A B)ᵀ: scalars stay in front
        scalars = [f for f in e.factors if shape(f) == (False, False)]
        return prod([*scalars, T(prod([f for f in e.factors if shape(f) != (False, False)]))])
    return T(e)


def _inner(e: M) -> bool:
    """A product of arrays whose value is a scalar (``xᵀ y``): one factor of a product, never spread into it."""
    return isinstance(e, Prod) and shape(e) == (False, False) and any(shape(f) != (False, False) for f in e.factors)


def prod(factors: list[M]) -> M:
    """A matrix product: nested products flattened (an inner product stays one factor), scalar factors in front
    (numbers gathered into one), identities dropped."""
    flat: list[M] = []
    for f in factors:
        flat.extend(f.factors if isinstance(f, Prod) and not _inner(f) else (f,))
    coef = Fraction(1)
    scalars: list[M] = []
    arrays: list[M] = []
    for f in flat:
        if isinstance(f, Num):
            coef *= f.value
        else:
            (arrays if shape(f) != (False, False) else scalars).append(f)
    if coef == 0:
        return Num(Fraction(0))
    if len(arrays) > 1:  # the rest is a valid chain: an identity in it multiplies a neighbour
        arrays = [f for f in arrays if not isinstance(f, Eye)] or arrays[:1]
    rest = [*scalars, *arrays]
    if coef != 1 or not rest:
        rest.insert(0, Num(coef))
    return rest[0] if len(rest) == 1 else Prod(tuple(rest))


def had(factors: list[M]) -> M:
    """An element-wise product; scalar factors become a scalar multiple in front."""
    flat: list[M] = []
    for f in factors:
        flat.extend(f.factors if isinstance(f, Had) else (f,))
    scalars = [f for f in flat if shape(f) == (False, False)]
    arrays = [f for f in flat if shape(f) != (False, False)]
    if not arrays:
        return prod(scalars)
    body = arrays[0] if len(arrays) == 1 else Had(tuple(arrays))
    return prod([*scalars, body]) if scalars else body


def plus(terms: list[M]) -> M:
    flat: list[M] = []
    for t in terms:
        flat.extend(t.terms if isinstance(t, Plus) else (t,))
    flat = [t for t in flat if not (isinstance(t, Num) and t.value == 0)]
    if not flat:
        return Num(Fraction(0))
    return flat[0] if len(flat) == 1 else Plus(tuple(flat))


def negative(e: M) -> bool:
    """Whether ``e`` prints with a leading minus (a negative number or coefficient)."""
    if isinstance(e, Num):
        return e.value < 0
    return isinstance(e, Prod) and isinstance(e.factors[0], Num) and e.factors[0].value < 0


def negated(e: M) -> M:
    """``-e`` for a ``negative`` ``e``."""
    if isinstance(e, Num):
        return Num(-e.value)
    assert isinstance(e, Prod) and isinstance(e.factors[0], Num)
    return prod([Num(-e.factors[0].value), *e.factors[1:]])
