"""The expression model: a small fixed set of immutable nodes, and the Expr and Program objects users hold.

Nodes are explicit about summation: ``Mul`` is a plain element-wise (outer/Hadamard) product and only ``Sum``
sums.  The parser turns the Einstein convention into ``Sum`` nodes, so a node means the same thing wherever it
stands, and the printer turns ``Sum`` nodes back into the convention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from operator import attrgetter
from typing import Any

from .depth import deep, depth_safe

__all__ = [
    "Node",
    "Number",
    "Tensor",
    "Delta",
    "Func",
    "Pow",
    "Mul",
    "Add",
    "Sum",
    "Op",
    "bound_indices",
    "Expr",
    "Program",
    "ZERO",
    "ONE",
    "negate",
    "memo",
    "deep",
    "depth_safe",
]

Indices = tuple[str, ...]


class Node:
    """Base of the expression nodes; ``free`` is the set of indices the node's value is indexed by.

    Nodes are immutable and compare by structure. Each node computes its hash once, from its children's
    hashes, and equality first tries identity and the hashes: a shared subtree (as derivatives make them) is
    compared and looked up in O(1), however deep it is.
    """

    __slots__ = ()
    free: frozenset[str]
    _hash: int
    _fields: Callable[[Node], Any]  # the defining fields (one value or a tuple), for hashing and equality
    _memo: dict[Any, Any] | None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node) or other.__class__ is not self.__class__:
            return NotImplemented
        # Iterative, so that comparing two deep trees needs no deep recursion.
        stack: list[tuple[Node, Node]] = [(self, other)]
        while stack:
            a, b = stack.pop()
            if a is b:
                continue
            if a.__class__ is not b.__class__ or a._hash != b._hash:
                return False
            (own_a, parts_a), (own_b, parts_b) = _split(a), _split(b)
            if own_a != own_b or len(parts_a) != len(parts_b):
                return False
            stack.extend(zip(parts_a, parts_b))
        return True

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through the constructor: the cached hash of strings differs between processes.
        return (self.__class__, tuple(getattr(self, name) for name in self.__match_args__))  # type: ignore[attr-defined]


def _split(node: Node) -> tuple[Any, tuple[Node, ...]]:
    """A node's own data and its sub-nodes."""
    if isinstance(node, Mul):
        return None, node.factors
    if isinstance(node, Add):
        return None, node.terms
    if isinstance(node, Func):
        return node.name, (node.arg,)
    if isinstance(node, Pow):
        return node.exponent, (node.base,)
    if isinstance(node, Sum):
        return node.indices, (node.body,)
    if isinstance(node, Op):
        return (node.name, node.indices), (node.arg,)
    return node._fields(node), ()


def memo(node: Node) -> dict[Any, Any]:
    """The node's own cache of results that depend on nothing but the node (its sort key, its indices, its
    simplified form...): shared subtrees compute them once, so passes take time in proportion to the DAG."""
    found = node._memo
    if found is None:
        found = {}
        object.__setattr__(node, "_memo", found)
    return found


_set = object.__setattr__  # the nodes are frozen: their constructors set each field once


def _private() -> Any:
    return field(init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Number(Node):
    """An exact rational constant."""

    value: Fraction
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("value")

    def __init__(self, value: Fraction) -> None:
        _set(self, "value", value)
        _set(self, "free", frozenset())
        _set(self, "_hash", hash(("Number", value)))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Tensor(Node):
    """A named input, ``A_ij``; a scalar name has no indices. ``A_ii`` (unsummed) is A's diagonal."""

    name: str
    indices: Indices
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("name", "indices")

    def __init__(self, name: str, indices: Indices) -> None:
        _set(self, "name", name)
        _set(self, "indices", indices)
        _set(self, "free", frozenset(indices))
        _set(self, "_hash", hash(("Tensor", (name, indices))))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Delta(Node):
    """Kronecker delta ``δ_ij``; with one index, ``δ_i`` is 1 for every i (the all-ones vector)."""

    indices: Indices
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("indices")

    def __init__(self, indices: Indices) -> None:
        _set(self, "indices", indices)
        _set(self, "free", frozenset(indices))
        _set(self, "_hash", hash(("Delta", indices)))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Func(Node):
    """An element-wise function of its argument, ``exp(u)``."""

    name: str
    arg: Node
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("name", "arg")

    def __init__(self, name: str, arg: Node) -> None:
        _set(self, "name", name)
        _set(self, "arg", arg)
        _set(self, "free", arg.free)
        _set(self, "_hash", hash(("Func", (name, arg))))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Pow(Node):
    """An element-wise power with an exact rational exponent, ``u^2``, ``u^-1``."""

    base: Node
    exponent: Fraction
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("base", "exponent")

    def __init__(self, base: Node, exponent: Fraction) -> None:
        _set(self, "base", base)
        _set(self, "exponent", exponent)
        _set(self, "free", base.free)
        _set(self, "_hash", hash(("Pow", (base, exponent))))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Mul(Node):
    """An element-wise product: shared indices are matched, not summed (summing is ``Sum``'s job)."""

    factors: tuple[Node, ...]
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("factors")

    def __init__(self, factors: tuple[Node, ...]) -> None:
        _set(self, "factors", factors)
        _set(self, "free", frozenset().union(*[f.free for f in factors]))
        _set(self, "_hash", hash(("Mul", factors)))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Add(Node):
    """A sum of terms; a term lacking some of the indices is broadcast along them."""

    terms: tuple[Node, ...]
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("terms")

    def __init__(self, terms: tuple[Node, ...]) -> None:
        _set(self, "terms", terms)
        _set(self, "free", frozenset().union(*[t.free for t in terms]))
        _set(self, "_hash", hash(("Add", terms)))
        _set(self, "_memo", None)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Sum(Node):
    """``Σ`` over ``indices`` (sorted) of ``body``."""

    indices: Indices
    body: Node
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("indices", "body")

    def __init__(self, indices: Indices, body: Node) -> None:
        _set(self, "indices", indices)
        _set(self, "body", body)
        _set(self, "free", body.free - frozenset(indices))
        _set(self, "_hash", hash(("Sum", (indices, body))))
        _set(self, "_memo", None)


#: Operators that bind their indices, as ``sum_j`` does: the result lacks them (see ``operators.py``).
BINDING = frozenset({"logsumexp", "mean", "max", "min", "det", "logdet"})


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Op(Node):
    """An operator over indices of its argument: ``softmax_j(u)``, ``logsumexp_j(u)``, ``mean_j(u)``,
    ``max_j(u)``, ``min_j(u)``, ``ismax_j(u)``, ``ismin_j(u)``, and the matrix functions ``inv(M)``, ``det(M)``,
    ``logdet(M)`` of an argument with exactly two free indices.

    A binding operator (``BINDING``: the reductions, det and logdet) binds ``indices`` as ``Sum`` does: its value
    lacks them. The others keep every index of the argument; ``indices`` are the axes they normalize over
    (softmax, ismax, ismin), or empty (inv: the inverse of a matrix is labelled by the same two indices whichever
    is taken as the row, since (Mᵀ)⁻¹ = (M⁻¹)ᵀ).
    """

    name: str
    indices: Indices
    arg: Node
    free: frozenset[str] = _private()
    _hash: int = _private()
    _memo: dict[Any, Any] | None = _private()
    _fields = attrgetter("name", "indices", "arg")

    def __init__(self, name: str, indices: Indices, arg: Node) -> None:
        indices = tuple(sorted(indices))  # one order, however renaming left them: printing is a fixed point
        _set(self, "name", name)
        _set(self, "indices", indices)
        _set(self, "arg", arg)
        _set(self, "free", arg.free - frozenset(indices) if name in BINDING else arg.free)
        _set(self, "_hash", hash(("Op", (name, indices, arg))))
        _set(self, "_memo", None)


def bound_indices(node: Node) -> Indices:
    """The indices ``node`` itself binds: a Σ's, or a binding operator's (``logsumexp_j``, ``det``)."""
    if isinstance(node, Sum) or (isinstance(node, Op) and node.name in BINDING):
        return node.indices
    return ()


def with_bound(node: Sum | Op, indices: Indices, body: Node) -> Node:
    """A Σ or binding operator like ``node`` over ``indices`` of ``body``."""
    if isinstance(node, Sum):
        return Sum(indices, body)
    return Op(node.name, indices, body)


ZERO = Number(Fraction(0))
ONE = Number(Fraction(1))


def exact_power(base: Fraction, exponent: Fraction) -> Fraction | None:
    """``base^exponent`` when it is rational and a number of the notation (``syntax.representable``), else None:
    folding never makes a number that would not print and parse back. Quick for any input (no huge powers).

    Negative bases take no fractional powers (numpy gives nan there, so folding would disagree); nor does zero
    take negative ones (a division by zero: ``printer.check_numbers`` refuses it in a simplified result).
    """
    from .syntax import representable

    if base == 0:
        return None if exponent < 0 else Fraction(1) if exponent == 0 else Fraction(0)
    if (exponent.denominator != 1 and base < 0) or abs(exponent.numerator) > 64 or not representable(base):
        return None
    root = []
    for n in (abs(base.numerator), base.denominator):
        q = exponent.denominator
        if n == 1 or q == 1:
            root.append(n)
            continue
        if q > n.bit_length():  # c^q == n needs c >= 2, so 2^q <= n
            return None
        c = 1 << -(-n.bit_length() // q)  # at least the q-th root; Newton's steps go down to its floor, exactly
        while (step := ((q - 1) * c + n // c ** (q - 1)) // q) < c:
            c = step
        if c**q != n:
            return None
        root.append(c)
    value = (Fraction(root[0], root[1]) * (1 if base > 0 else -1)) ** exponent.numerator
    return value if representable(value) else None


def product(nodes: list[Node] | tuple[Node, ...]) -> Node:
    """The product of ``nodes``: nested products spliced in, numbers multiplied into one leading coefficient."""
    flat: list[Node] = []
    coef = Fraction(1)
    for n in nodes:
        for f in n.factors if isinstance(n, Mul) else (n,):
            if isinstance(f, Number):
                coef *= f.value
            else:
                flat.append(f)
    if coef != 1 or not flat:
        flat.insert(0, Number(coef))
    return flat[0] if len(flat) == 1 else Mul(tuple(flat))


def negate(node: Node) -> Node:
    """``-node``, folding the sign into a number or a product's leading coefficient."""
    if isinstance(node, Number):
        return Number(-node.value)
    if isinstance(node, Sum):
        return Sum(node.indices, negate(node.body))
    if isinstance(node, Mul) and isinstance(node.factors[0], Number):
        coef = -node.factors[0].value
        rest = node.factors[1:]
        if coef == 1:
            return rest[0] if len(rest) == 1 else Mul(rest)
        return Mul((Number(coef), *rest))
    if isinstance(node, Mul):
        return Mul((Number(Fraction(-1)), *node.factors))
    return Mul((Number(Fraction(-1)), node))


def _canonical_form(node: Node, free: frozenset[str], symmetric: frozenset[str]) -> Node:
    from .canonical import SYMMETRIC, canonical
    from .names import share

    token = SYMMETRIC.set(symmetric)
    try:
        return canonical(share(node), free)
    finally:
        SYMMETRIC.reset(token)


class Expr:
    """An expression or one statement: a node, its output indices in axis order, and what it was made from.

    ``free`` is the axis order of the value; ``name`` is the left-hand side's name (``None`` for a bare
    expression); ``variables`` maps every input tensor the expression was built from to its rank, so that
    derivatives which no longer mention a variable still know it; ``origins`` says, for each free index, which
    input's axis gives its size; ``symmetric`` names the two-index tensors declared symmetric (``S_ij = S_ji``:
    simplification, equality and derivatives by them use it, and evaluating checks it; see ``symmetric.py``).
    Two Exprs are equal when they have the same free indices, the same structure up to the order of sums and
    products and the names of summed indices (and the indices of a symmetric tensor), and the same declared
    tensors among those they use.

    >>> import indexdiff as ix
    >>> ix.parse("x_i A_ij x_j").free
    ()
    """

    __slots__ = ("node", "free", "name", "variables", "origins", "symmetric", "_key")

    def __init__(
        self,
        node: Node,
        free: Indices,
        name: str | None = None,
        variables: dict[str, int] | None = None,
        origins: dict[str, tuple[str, int]] | None = None,
        symmetric: frozenset[str] = frozenset(),
    ) -> None:
        self.node = node
        self.free = tuple(free)
        self.name = name
        self.variables = dict(variables or {})
        self.origins = dict(origins or {})
        self.symmetric = frozenset(symmetric)
        self._key: Any = None

    def _canonical(self) -> Any:
        if self._key is None:
            from .names import tensor_names

            used = self.symmetric & tensor_names(self.node)
            self._key = (deep(_canonical_form, self.node, frozenset(self.free), used), self.free, used)
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expr):
            return NotImplemented
        return self._canonical() == other._canonical()

    def __hash__(self) -> int:
        return hash(self._canonical())

    def __str__(self) -> str:
        from .printer import to_text

        return deep(to_text, self)

    def __repr__(self) -> str:
        declared = f", symmetric={{{', '.join(map(repr, sorted(self.symmetric)))}}}" if self.symmetric else ""
        return f"Expr({str(self)!r}{declared})"

    def matrix(self) -> Any:
        """This expression in matrix notation: a ``MatrixForm`` (``.text``, ``.latex``, ``.fallback``)."""
        from .matrixform import to_matrix

        return to_matrix(self)

    def _repr_latex_(self) -> str:
        from .printer import to_latex

        return f"$${to_latex(self)}$$"


class Program:
    """Several statements; later statements may use the tensors earlier ones define.

    ``outputs`` names what evaluating or compiling the program returns (default: its last statement).
    """

    __slots__ = ("statements", "outputs")

    def __init__(self, statements: tuple[Expr, ...], outputs: tuple[str, ...] | None = None) -> None:
        self.statements = tuple(statements)
        self.outputs = tuple(outputs) if outputs else (self.statements[-1].name,) if self.statements else ()

    @property
    def names(self) -> tuple[str, ...]:
        """The defined names, in order."""
        return tuple(s.name for s in self.statements if s.name is not None)

    @property
    def inputs(self) -> dict[str, int]:
        """Tensors used but not defined by the program, with their ranks."""
        defined = set(self.names)
        out: dict[str, int] = {}
        for s in self.statements:
            for name, rank in s.variables.items():
                if name not in defined:
                    out.setdefault(name, rank)
        return out

    def __getitem__(self, name: str) -> Expr:
        for s in self.statements:
            if s.name == name:
                return s
        raise KeyError(name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Program):
            return NotImplemented
        return len(self.statements) == len(other.statements) and all(
            a.name == b.name and a == b for a, b in zip(self.statements, other.statements)
        )

    def __hash__(self) -> int:
        return hash(tuple((s.name, s) for s in self.statements))

    def __str__(self) -> str:
        return "\n".join(str(s) for s in self.statements)

    def __repr__(self) -> str:
        return f"Program({str(self)!r})"

    def matrix(self) -> Any:
        """The statements in matrix notation, one ``name = ...`` line each (a ``MatrixForm``, as ``Expr.matrix``)."""
        from .matrixform import to_matrix

        return to_matrix(self)

    def _repr_latex_(self) -> str:
        from .display import program_latex_aligned

        return f"$${program_latex_aligned(self.statements)}$$"
