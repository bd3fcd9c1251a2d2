"""Matrix syntax (with shapes) -> index-notation nodes.

Each node is written for the indices its caller gives it: its rows' index and its columns' index (None where it
has none), so ``A B`` for (i, j) is ``Σ_k A_ik B_kj`` and ``Aᵀ`` for (i, j) is ``A_ji``. Indices are letters in
reading order (i, j, k, ...), never a tensor's name; the terms of a sum reuse the same letters.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from .errors import ParseError
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, negate, product
from .identities import recognize
from .indices import make_sum
from .matrixparse import MNode, callable_name
from .matrixshapes import COL, MATRIX, ROW, SCALAR, TRANSPOSES, Shape, infer
from .names import origin, separate
from .syntax import NUMBER_RULE, foldable, representable

__all__ = ["translate"]

_ORDER = "ijklmnpqrstuvwabcdefghoyz"
Index = str | None


class _Emit:
    def __init__(self, avoid: set[str], text: str) -> None:
        self.avoid = avoid
        self.text = text
        self.used: set[str] = set()

    def fresh(self) -> str:
        for c in _ORDER:
            if c not in self.used and c not in self.avoid:
                self.used.add(c)
                return c
        k = 1
        while f"i{k}" in self.used or f"i{k}" in self.avoid:
            k += 1
        self.used.add(f"i{k}")
        return f"i{k}"

    def emit(self, node: MNode, r: Index, c: Index) -> Node:
        """``node`` as index notation whose rows are ``r`` and columns ``c`` (None for an axis it lacks)."""
        return self.checked(getattr(self, f"_{node.kind}")(node, r, c), node, representable)

    def checked(self, out: Node, node: MNode, within: Callable[[Fraction], bool] = foldable) -> Node:
        """``out``, unless the number leading it (which the translation multiplied) is out of range."""
        number = _coefficient(out.body if isinstance(out, Sum) else out)
        if number is not None and not within(number):
            raise ParseError(
                "the numbers here multiply to a number out of range",
                self.text,
                node.start,
                node.end,
                hint=f"{NUMBER_RULE.capitalize()}; rescale the expression",
            )
        return out

    def vector(self, node: MNode, index: str) -> Node:
        """A vector node (column or row) along ``index``."""
        return self.emit(node, index, None) if node.shape == COL else self.emit(node, None, index)

    def fill(self, shape: Shape, r: Index, c: Index) -> tuple[Index, Index]:
        """The indices a node of ``shape`` gets in a place with indices (r, c): those of its own axes."""
        return (r if shape[0] else None, c if shape[1] else None)

    def _number(self, node: MNode, r: Index, c: Index) -> Node:
        assert node.value is not None
        return Number(node.value)

    def _ones(self, node: MNode, r: Index, c: Index) -> Node:
        assert r is not None
        return Delta((r,))

    def _eye(self, node: MNode, r: Index, c: Index) -> Node:
        assert r is not None and c is not None
        return Delta((r,)) if r == c else Delta((r, c))

    def _name(self, node: MNode, r: Index, c: Index) -> Node:
        return Tensor(node.name, tuple(i for i in (r, c) if i is not None))

    def _group(self, node: MNode, r: Index, c: Index) -> Node:
        return self.emit(node.parts[0], r, c)

    def _neg(self, node: MNode, r: Index, c: Index) -> Node:
        return negate(self.emit(node.parts[0], r, c))

    def _add(self, node: MNode, r: Index, c: Index) -> Node:
        before, after = set(self.used), set()
        terms = []
        for k, part in enumerate(node.parts):
            self.used = set(before)
            term = self.emit(part, *self.fill(part.shape, r, c))
            terms.append(term if k == 0 or node.ops[k - 1] == "+" else negate(term))
            after |= self.used
        self.used = after
        return Add(tuple(terms))

    def _chain(self, node: MNode, r: Index, c: Index) -> Node:
        factors: list[Node] = []
        indices: list[tuple[Index, Index]] = [(None, None)] * len(node.parts)
        summed = set()
        previous: int | None = None
        for k, part in enumerate(node.parts):
            if part.shape == SCALAR:
                continue
            row = r if previous is None and part.shape[0] else None
            if previous is not None and part.shape[0]:  # the contraction with the previous non-scalar factor
                row = self.fresh()
                summed.add(row)
                indices[previous] = (indices[previous][0], row)
            indices[k] = (row, None)
            previous = k
        if previous is not None and node.parts[previous].shape[1]:
            indices[previous] = (indices[previous][0], c)
        merged: dict[Index, Index] = {}  # diag(v) in a product: v_k meets its neighbours at one index k

        def find(i: Index) -> Index:
            while i in merged:
                i = merged[i]
            return i

        for k, part in enumerate(node.parts):
            if _diagonal(part):
                row, col = find(indices[k][0]), find(indices[k][1])
                if col in summed:
                    summed.discard(col)
                    merged[col] = row
                elif row in summed:
                    summed.discard(row)
                    merged[row] = col
        indices = [(find(i), find(j)) for i, j in indices]
        coef = Fraction(1)
        for part, (row, col) in zip(node.parts, indices):
            factors.append(self.emit(part, row, col))
            number = _coefficient(factors[-1])
            coef *= 1 if number is None else number
            self.checked(Number(coef), node)  # a long run of huge numbers fails fast
        return make_sum(summed, _product(factors))

    def _elementwise(self, node: MNode, r: Index, c: Index) -> Node:
        first = node.parts[0]
        acc = self.emit(first, *self.fill(first.shape, r, c))
        for op, part in zip(node.ops, node.parts[1:]):
            value = self.emit(part, *self.fill(part.shape, r, c))
            if op in ("\u2218", "\u2299", ".*"):
                acc = self.checked(_product([acc, value]), node)
                continue
            if any(
                isinstance(f, Number) and f.value == 0 for f in (value.factors if isinstance(value, Mul) else (value,))
            ):
                raise ParseError("division by zero", self.text, part.start, part.end, hint="divide by a nonzero value")
            acc = self.checked(_product([acc, reciprocal(value)]), node)
        return acc

    def _call(self, node: MNode, r: Index, c: Index) -> Node:
        (arg,) = node.parts
        name, shape = node.name, arg.shape
        if name in ("sum", "norm2"):
            rows, cols = (self.fresh() if shape[0] else None), (self.fresh() if shape[1] else None)
            value = self.emit(arg, rows, cols)
            if name == "norm2":
                if shape == SCALAR:
                    return Func("abs", value)
                value = Pow(value, Fraction(2))
            total = make_sum({i for i in (rows, cols) if i is not None}, value)
            return total if name == "sum" else Pow(total, Fraction(1, 2))
        if name == "vector":
            assert r is not None
            return _product([self.emit(arg, None, None), Delta((r,))])
        if name == "inv":
            return self.inverse(arg, r, c)
        if name == "tr":
            if shape == SCALAR:
                return self.emit(arg, None, None)
            i = self.fresh()
            return make_sum({i}, self.emit(arg, i, i))
        if name in ("det", "logdet"):
            i, j = self.fresh(), self.fresh()
            return Op(name, (i, j), self.emit(arg, i, j))
        if name == "diag":
            if shape == MATRIX:
                return self.emit(arg, r, r)
            assert r is not None and c is not None
            v = self.vector(arg, r)
            return v if r == c else _product([v, Delta((r, c))])
        if name == "softmax":
            if shape != MATRIX:
                index = r if shape == COL else c
                assert index is not None
                return Op("softmax", (index,), self.vector(arg, index))
            return self.distinct(r, c, lambda i, j: Op("softmax", (j,), self.emit(arg, i, j)))
        if name == "logsumexp":
            j = self.fresh()
            if shape != MATRIX:
                return Op("logsumexp", (j,), self.vector(arg, j))
            return Op("logsumexp", (j,), self.emit(arg, r, j))
        return Func(name, self.emit(arg, r, c))  # element-wise

    def distinct(self, r: Index, c: Index, build) -> Node:  # type: ignore[no-untyped-def]
        """``build(r, c)``, where r and c must differ (an operator of a matrix): on the diagonal (r == c), the
        operator for (r, k) times δ_kr, summed over k."""
        assert r is not None and c is not None
        if r != c:
            return build(r, c)
        k = self.fresh()
        return Sum((k,), _product([build(r, k), Delta((k, r))]))

    def inverse(self, arg: MNode, r: Index, c: Index) -> Node:
        if arg.shape == SCALAR:
            return reciprocal(self.emit(arg, None, None))
        return self.distinct(r, c, lambda i, j: Op("inv", (), self.emit(arg, i, j)))

    def power(self, base: MNode, exponent: Fraction, r: Index, c: Index) -> Node:
        """``base^exponent``: of a scalar a power, of a matrix an integer power (a product, or of the inverse)."""
        if base.shape == SCALAR:
            inner = base
            while inner.kind == "group":
                inner = inner.parts[0]
            if inner.kind == "norm" or (inner.kind == "call" and inner.name == "norm2"):
                arg = inner.parts[0]
                if arg.shape != SCALAR:  # ‖v‖^p = (Σ v²)^(p/2): norm2(A x - b)^2 is a sum of squares
                    value = self._call(MNode("call", inner.start, inner.end, name="sum", parts=(_square(arg),)), r, c)
                    return value if exponent == 2 else Pow(value, exponent / 2)
            return Pow(self.emit(base, None, None), exponent)
        assert r is not None and c is not None
        n = int(abs(exponent))
        if n == 1:
            return self.inverse(base, r, c) if exponent < 0 else self.emit(base, r, c)
        links = [r, *(self.fresh() for _ in range(n - 1)), c]
        emit = (lambda i, j: self.inverse(base, i, j)) if exponent < 0 else (lambda i, j: self.emit(base, i, j))
        return make_sum(set(links[1:-1]), _product([emit(i, j) for i, j in zip(links, links[1:])]))

    def _power(self, node: MNode, r: Index, c: Index) -> Node:
        base = node.parts[0]
        assert node.value is not None
        if node.name == ".^":
            return Pow(self.emit(base, r, c), node.value)
        return self.power(base, node.value, r, c)

    def _mark(self, node: MNode, r: Index, c: Index) -> Node:
        (arg,) = node.parts
        if node.name in TRANSPOSES:
            return self.emit(arg, c, r)
        if node.name == "\u207b\u1d40":
            return self.inverse(arg, c, r)
        assert node.value is not None
        return self.power(arg, node.value, r, c)

    def _norm(self, node: MNode, r: Index, c: Index) -> Node:
        return self._call(MNode("call", node.start, node.end, name="norm2", parts=node.parts), r, c)


def _square(arg: MNode) -> MNode:
    """``arg.^2`` as a node (for norms)."""
    two = MNode("number", arg.start, arg.end, value=Fraction(2), shape=SCALAR)
    return MNode("power", arg.start, arg.end, name=".^", value=Fraction(2), parts=(arg, two), shape=arg.shape)


def _diagonal(node: MNode) -> bool:
    """Whether ``node`` is diag(v) of a vector v."""
    while node.kind == "group":
        node = node.parts[0]
    return node.kind == "call" and node.name == "diag" and node.parts[0].shape in (COL, ROW)


def _product(nodes: list[Node]) -> Node:
    """The product of ``nodes``; a number times one sum goes inside it, as the index parser stores it."""
    node = product(nodes)
    if isinstance(node, Mul) and len(node.factors) == 2 and isinstance(node.factors[0], Number):
        number, inner = node.factors
        if isinstance(inner, Sum):
            return Sum(inner.indices, product([number, inner.body]))
    return node


def _coefficient(node: Node) -> Fraction | None:
    """The number a node is, or that leads its product."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Mul) and isinstance(node.factors[0], Number):
        return node.factors[0].value
    return None


def _factors(node: Node) -> tuple[Node, ...]:
    return node.factors if isinstance(node, Mul) else (node,)


def reciprocal(node: Node) -> Node:
    """``1 / node``, factor by factor, as index notation's quotients are."""
    return product([Number(1 / f.value) if isinstance(f, Number) else Pow(f, Fraction(-1)) for f in _factors(node)])


def translate(tree: MNode, table: dict[str, Shape], text: str) -> Expr:
    """The Expr that the matrix syntax ``tree`` means."""
    name = None
    if tree.kind == "statement":
        name, tree = tree.name, tree.parts[0]
    names = infer(tree, table, text)
    if name is not None and (name in names or callable_name(name)):
        at = text.index(name)
        reason = f"'{name}' is defined in terms of itself" if name in names else f"'{name}' is a reserved name"
        raise ParseError(reason, text, at, at + len(name), hint="give the result a new name")
    emit = _Emit(set(names), text)
    shape = tree.shape
    r = emit.fresh() if shape[0] else None
    c = emit.fresh() if shape[1] else None
    node = emit.emit(tree, r, c)
    free = tuple(i for i in (r, c) if i is not None)
    node = separate(recognize(node), frozenset(free))
    ranks = {SCALAR: 0, COL: 1, ROW: 1, MATRIX: 2}
    variables = {name: ranks[s] for name, s in names.items()}
    origins = {i: found for i in free if (found := origin(node, i)) is not None}
    return Expr(node, free, name, variables, origins)
