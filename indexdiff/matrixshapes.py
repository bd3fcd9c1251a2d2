"""The shapes of matrix notation: every node of a matrix syntax tree is a scalar, a column vector, a row vector or
a matrix. Names take theirs from their first letter (a-g scalars, h-z vectors, A-Z matrices) or from ``shapes``;
a product, sum or function whose operands do not fit is a ShapeError that shows both shapes and suggests a fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from .errors import ArgumentError, IndexDiffError, ParseError, ShapeError
from .functions import FUNCTIONS
from .matrixparse import MATRIX_WORDS, MNode, callable_name
from .parser import _INDEX
from .syntax import NUMBER_RULE, representable

__all__ = ["Shape", "SCALAR", "COL", "ROW", "MATRIX", "declared", "infer", "TRANSPOSES", "constant"]

Shape = tuple[bool, bool]  # (has rows, has columns)
SCALAR: Shape = (False, False)
COL: Shape = (True, False)
ROW: Shape = (False, True)
MATRIX: Shape = (True, True)

_WORDS = {SCALAR: "a scalar", COL: "a column vector", ROW: "a row vector (a transposed vector)", MATRIX: "a matrix"}
_BY_NAME = {"scalar": SCALAR, "vector": COL, "column": COL, "matrix": MATRIX, 0: SCALAR, 1: COL, 2: MATRIX}
#: The shape given to a name declared with three or more indices (an error where the name is used).
_HIGHER: Shape = (True, True, True)  # type: ignore[assignment]
#: Postfix marks that transpose.
TRANSPOSES = frozenset({"'", "\u1d40", "\u22a4", ".T", "^T"})
_SUPERSCRIPT = str.maketrans("\u207b\u207a\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079", "-+0123456789")
#: The largest integer power of a matrix written out as a product.
MAX_MATRIX_POWER = 16


def declared(shapes: Mapping[str, Any] | None) -> dict[str, Shape]:
    """``shapes`` ({"x": "matrix"}, {"x": 2}, ...) as shapes by name; a bad entry is an ArgumentError."""
    if shapes is None:
        return {}
    if not isinstance(shapes, Mapping):
        raise ArgumentError(
            f"shapes must map names to shapes, got {type(shapes).__name__}",
            hint="e.g. shapes={'b': 'vector', 'X': 'matrix', 'lam': 'scalar'} (or numbers of indices 0, 1, 2)",
        )
    out = {}
    for name, shape in shapes.items():
        if not isinstance(name, str) or not _INDEX.match(name) or callable_name(name):
            raise ArgumentError(
                f"shapes names {name!r}, which cannot be a name of matrix notation",
                hint="a name is a letter then letters or digits, not a function or " + ", ".join(MATRIX_WORDS),
            )
        key = shape.lower() if isinstance(shape, str) else shape
        if isinstance(key, int) and not isinstance(key, bool) and key > 2:
            out[name] = _HIGHER  # an index-notation tensor of rank 3 or more: no matrix notation for it
            continue
        if isinstance(shape, bool) or key not in _BY_NAME:
            raise ArgumentError(
                f"shapes gives {name!r} the shape {shape!r}",
                hint="a shape is 'scalar', 'vector' or 'matrix', or a number of indices 0, 1 or 2",
            )
        out[name] = _BY_NAME[key]
    return out


def _default(name: str) -> Shape:
    """matrixcalculus.org's classes by the first letter (lower-case Greek: scalars, upper-case Greek: matrices)."""
    first = name[0]
    if "a" <= first <= "g":
        return SCALAR
    if "h" <= first <= "z":
        return COL
    if first.isupper():
        return MATRIX
    return SCALAR


def constant(node: MNode) -> Fraction | None:
    """The value of a constant exponent: a number, a negated one, or a parenthesized quotient (1/3)."""
    if node.kind == "number" and node.value is not None:
        return node.value
    if node.kind == "group":
        return constant(node.parts[0])
    if node.kind == "neg":
        value = constant(node.parts[0])
        return None if value is None else -value
    if node.kind == "elementwise" and set(node.ops) <= {"/", "./"}:
        out = constant(node.parts[0])
        for p in node.parts[1:]:
            v = constant(p)
            if out is None or v is None or v == 0:
                return None
            out /= v
        return out
    if node.kind == "chain" and len(node.parts) == 1:
        return constant(node.parts[0])
    return None


def _superscript(mark: str) -> Fraction | None:
    digits = mark.translate(_SUPERSCRIPT)
    return Fraction(int(digits)) if digits.lstrip("+-").isdigit() else None


class Shapes:
    """Gives each node its ``shape``; ``names`` collects the variables with their shapes."""

    def __init__(self, table: dict[str, Shape], text: str) -> None:
        self.table = table
        self.text = text
        self.names: dict[str, Shape] = {}
        self.inferred: dict[str, Shape] = {}  # undeclared scalars that a sum shows to be vectors or matrices

    def src(self, node: MNode) -> str:
        return self.text[node.start : node.end]

    def error(self, reason: str, node: MNode, hint: str, end: int | None = None) -> IndexDiffError:
        return ShapeError(reason, self.text, node.start, node.end if end is None else end, hint=hint)

    def infer(self, node: MNode) -> Shape:
        shape = getattr(self, f"_{node.kind}")(node)
        node.shape = shape
        return shape

    def _number(self, node: MNode) -> Shape:
        return SCALAR

    def _ones(self, node: MNode) -> Shape:
        return COL

    def _eye(self, node: MNode) -> Shape:
        return MATRIX

    def _name(self, node: MNode) -> Shape:
        name = node.name
        if name == "eye":
            node.kind = "eye"
            return MATRIX
        if callable_name(name):
            raise ParseError(
                f"'{name}' is a function, not a name",
                self.text,
                node.start,
                node.end,
                hint=f"write {name}(...) with no space before '('",
            )
        mixed = not (name.isupper() or name.islower())
        if name not in self.table and len(name) == 2 and name.isascii() and name.isalpha() and mixed:
            raise ParseError(
                f"'{name}' is read as one name",
                self.text,
                node.start,
                node.end,
                hint=f"for a product write {name[0]} {name[1]}; to use '{name}' as a name, declare its shape: "
                f"shapes={{'{name}': 'matrix'}}",
            )
        shape = self.table.get(name) or _default(name)
        if shape == _HIGHER:
            raise ShapeError(
                f"'{name}' is declared with three or more indices: matrix notation has at most two",
                self.text,
                node.start,
                node.end,
                hint="write the expression in index notation (ix.parse)",
            )
        self.names[name] = shape
        return shape

    def _group(self, node: MNode) -> Shape:
        return self.infer(node.parts[0])

    def _neg(self, node: MNode) -> Shape:
        return self.infer(node.parts[0])

    def _norm(self, node: MNode) -> Shape:
        self.infer(node.parts[0])
        return SCALAR

    def _mark(self, node: MNode) -> Shape:
        (arg,) = node.parts
        if node.name in TRANSPOSES:
            if arg.kind == "number" and arg.value == 1:
                arg.kind = "ones"  # 1ᵀ: the ones vector
            rows, cols = self.infer(arg)
            return (cols, rows)
        shape = self.infer(arg)
        if node.name == "\u207b\u1d40":
            return self._invertible(node, arg, shape, "⁻ᵀ")
        exponent = _superscript(node.name)
        assert exponent is not None
        node.value = exponent
        return self._power_of(node, arg, shape, exponent)

    def _invertible(self, node: MNode, arg: MNode, shape: Shape, what: str) -> Shape:
        if shape in (COL, ROW):
            raise self.error(
                f"{what} of {_WORDS[shape]}: '{self.src(arg)}' has no inverse",
                node,
                hint="only square matrices have inverses; for the entries' reciprocals write 1 ./ x",
            )
        return shape

    def _power_of(self, node: MNode, base: MNode, shape: Shape, exponent: Fraction) -> Shape:
        """``^`` of a scalar is a power; of a matrix an integer power (-1: the inverse)."""
        if shape == SCALAR:
            return SCALAR
        src, shown = self.src(base), str(exponent) if exponent.denominator == 1 else f"({exponent})"
        if shape != MATRIX:
            length = f"{transposed(src, base)} {src}" if shape == COL else f"{src} {transposed(src, base)}"
            hint = "for the entries' reciprocals write 1 ./ " + src if exponent == -1 else ""
            hint = hint or f"for the entries' powers write {src}.^{shown}; for the squared length write {length}"
            raise self.error(f"a power of {_WORDS[shape]}: '{src}'", node, hint=hint)
        if exponent.denominator != 1 or exponent == 0 or abs(exponent) > MAX_MATRIX_POWER:
            raise self.error(
                f"a matrix power must be a nonzero integer up to {MAX_MATRIX_POWER} in size, not {exponent}",
                node,
                hint=f"for the entries' powers write {src}.^{shown}; for the identity write eye",
            )
        return MATRIX

    def _power(self, node: MNode) -> Shape:
        base, exponent = node.parts
        shape = self.infer(base)
        if node.name == "^" and exponent.kind == "name" and exponent.name in ("T", "\u22a4"):
            node.kind, node.name, node.parts = "mark", "^T", (base,)
            return self._mark(node)
        value = constant(exponent)
        if value is None:
            raise ParseError(
                "the exponent must be a number",
                self.text,
                exponent.start,
                exponent.end,
                hint="write x.^2, c^-1, c^0.5 or c^(1/3); A^T is the transpose",
            )
        if not representable(value):
            raise ParseError("exponent out of range", self.text, exponent.start, exponent.end, hint=NUMBER_RULE)
        node.value = value
        if _zero_base(base) and value < 0:
            raise self.error("zero to a negative power: a division by zero", base, hint="write a nonzero base")
        if node.name == ".^":
            return shape
        return self._power_of(node, base, shape, value)

    def _call(self, node: MNode) -> Shape:
        (arg,) = node.parts
        name = node.name
        if name == "vector" and arg.kind == "number" and arg.value == 1:
            arg.kind = "ones"
            node.kind = "group"
            return COL
        shape = self.infer(arg)
        what = f"'{self.src(arg)}' is {_WORDS[shape]}"
        if name in FUNCTIONS:
            return shape
        if name in ("sum", "norm2"):
            return SCALAR
        if name == "vector":
            if shape != SCALAR:
                raise self.error(f"vector(...) takes a scalar: {what}", arg, hint="vector(1) is the ones vector")
            return COL
        if name in ("tr", "det", "logdet", "inv"):
            if shape == SCALAR and name in ("tr", "inv"):
                return SCALAR
            if shape != MATRIX:
                hint = f"{name}(M) takes a square matrix"
                if name == "tr" and shape in (COL, ROW):
                    hint += "; the sum of the entries is sum(...), a squared length xᵀ x"
                raise self.error(f"{name}(...) needs a matrix: {what}", arg, hint=hint)
            return SCALAR if name != "inv" else MATRIX
        if name == "diag":
            if shape == SCALAR:
                raise self.error(
                    f"diag(...) needs a vector or a matrix: {what}", arg, hint="diag(v) is a diagonal matrix"
                )
            return COL if shape == MATRIX else MATRIX
        if name in ("softmax", "logsumexp"):
            if shape == SCALAR:
                raise self.error(
                    f"{name}(...) needs a vector or a matrix: {what}",
                    arg,
                    hint=f"{name} of a vector normalizes over its entries, of a matrix over each row",
                )
            if name == "softmax":
                return shape
            return COL if shape == MATRIX else SCALAR
        close = difflib.get_close_matches(name, [*FUNCTIONS, *MATRIX_WORDS], n=1)
        raise ParseError(
            f"'{name}' is not a function of matrix notation",
            self.text,
            node.start,
            node.start + len(name),
            hint=(f"did you mean {close[0]}? " if close else "")
            + f"functions: {', '.join([*FUNCTIONS, *MATRIX_WORDS])}; the identity matrix is eye",
        )

    def _chain(self, node: MNode) -> Shape:
        """A matrix product, left to right: neighbouring non-scalar factors contract (a factor with columns, then
        one with rows), or make an outer product (a column vector, then a row vector); scalars multiply."""
        parts = node.parts
        shapes = [self.infer(p) for p in parts]
        for k, op in enumerate(node.ops):
            if op == "" and parts[k].kind == "name":
                self._direct_call(parts[k])
        for k, p in enumerate(parts):  # a literal 1 next to a factor that needs a vector is the ones vector
            if p.kind == "number" and p.value == 1:
                before = shapes[k - 1] if k else SCALAR
                after = shapes[k + 1] if k + 1 < len(parts) else SCALAR
                if before[1] or after == ROW:
                    p.kind = "ones"
                    shapes[k] = self.infer(p)
        left: int | None = None  # the last non-scalar factor so far
        first: int | None = None
        for k, shape in enumerate(shapes):
            if shape == SCALAR:
                continue
            if left is not None and shapes[left][1] != shape[0]:
                self._mismatch(node, first, left, k, shapes)
            first = k if first is None else first
            left = k
        if first is None:
            return SCALAR
        assert left is not None
        return (shapes[first][0], shapes[left][1])

    def _direct_call(self, name: MNode) -> None:
        """``A(x)`` is a product; ``foo(x)`` with an undeclared name of several letters is an unknown function."""
        if len(name.name) == 1 or name.name in self.table or not name.name.isalpha():  # A(x), W1(x): products
            return
        close = difflib.get_close_matches(name.name, [*FUNCTIONS, *MATRIX_WORDS], n=1)
        raise ParseError(
            f"unknown function '{name.name}'",
            self.text,
            name.start,
            name.end,
            hint=(f"did you mean {close[0]}? " if close else "")
            + f"for a product write {name.name} (...) with a space, or declare its shape: "
            f"shapes={{'{name.name}': 'matrix'}}",
        )

    def _mismatch(self, node: MNode, first: int | None, left: int, right: int, shapes: list[Shape]) -> None:
        parts = node.parts
        a, b = parts[left], parts[right]
        start = parts[first].start if first is not None else a.start
        lshape = (shapes[first][0] if first is not None else shapes[left][0], shapes[left][1])
        whole = self.text[node.start : node.end]

        def replaced(p: MNode) -> str:
            return whole[: p.start - node.start] + transposed(self.src(p), p) + whole[p.end - node.start :]

        if lshape[1]:  # something with columns, then a row vector
            fixes = [replaced(b)]
            why = "after a factor with columns comes one with rows (a column vector or a matrix)"
        else:  # a column vector, then something with rows
            fixes = [replaced(a)] + ([replaced(b)] if shapes[right] == COL else [])
            why = "a column vector can only be followed by a row vector (an outer product)"
        left_text = self.text[start : a.end]
        raise ShapeError(
            f"cannot multiply '{left_text}' by '{self.src(b)}': '{left_text}' is {_WORDS[lshape]} and "
            f"'{self.src(b)}' is {_WORDS[shapes[right]]}; {why}",
            self.text,
            start,
            b.end,
            hint="did you mean " + " or ".join(fixes) + "?",
        )

    def _elementwise(self, node: MNode) -> Shape:
        """``∘ .* ./ /``, left to right: operands of one shape (a scalar goes with anything); '/' by a scalar."""
        shapes = [self.infer(p) for p in node.parts]
        acc = shapes[0]
        for k, (op, p, shape) in enumerate(zip(node.ops, node.parts[1:], shapes[1:])):
            if op in ("/", "./") and p.kind == "chain" and len(p.parts) > 1:
                left = self.text[node.parts[k].start : node.parts[k].end]
                raise ParseError(
                    f"'{op}' before a product is ambiguous",
                    self.text,
                    node.parts[k].start,
                    p.end,
                    hint=f"'{op}' binds looser than the product: write ({left}{op}{self.src(p.parts[0])}) "
                    f"{self.text[p.parts[1].start : p.end]} or {left} {op} ({self.src(p)})",
                )
            if op == "/" and shape != SCALAR:
                hint = "for entry-by-entry division write ./"
                if shape == MATRIX:
                    hint += "; to divide by a matrix multiply by its inverse: B⁻¹"
                raise self.error(f"'/' divides by a scalar: '{self.src(p)}' is {_WORDS[shape]}", p, hint=hint)
            if shape != SCALAR and acc != SCALAR and shape != acc:
                what = "Hadamard product" if op != "./" else "element-wise division"
                left = self.text[node.start : node.parts[k].end]
                raise ShapeError(
                    f"the operands of a {what} have different shapes: '{left}' is {_WORDS[acc]} and "
                    f"'{self.src(p)}' is {_WORDS[shape]}",
                    self.text,
                    node.start,
                    p.end,
                    hint=self.fix(node, p, acc, shape),
                )
            acc = shape if acc == SCALAR else acc
        return acc

    def fix(self, node: MNode, part: MNode, have: Shape, other: Shape) -> str:
        """How to give ``part`` (of ``other`` shape) the shape ``have`` of the rest of ``node``."""
        text = self.src(part)
        if {have, other} == {COL, ROW}:
            whole = self.src(node)
            fixed = whole[: part.start - node.start] + transposed(text, part) + whole[part.end - node.start :]
            return f"did you mean {fixed}?"
        if have == MATRIX and other == COL:
            return f"to use {text} in every column write {text} 1ᵀ, in every row 1 {transposed(text, part)}"
        if have == MATRIX and other == ROW:
            return f"to use {text} in every row write 1 {text}"
        return "a vector and a matrix: make the vector a matrix (v 1ᵀ, 1 vᵀ) or the matrix a vector (A 1, diag(A))"

    def _add(self, node: MNode) -> Shape:
        """Terms of one shape; scalars are added to every entry. A scalar only by its first letter (an undeclared
        name a-g) that is a term of its own takes the other terms' shape: in A x - b, b is a vector."""
        shapes = [self.infer(p) for p in node.parts]
        shape = next((s for s in shapes if s != SCALAR), SCALAR)
        for k, p in enumerate(node.parts):
            bare = p.parts[0] if p.kind == "neg" else p
            if shapes[k] == SCALAR != shape and bare.kind == "name" and bare.name not in self.table:
                self.inferred.setdefault(bare.name, shape)
                shapes[k] = shape
        first = next((p for p, s in zip(node.parts, shapes) if s != SCALAR), None)
        for p, s in zip(node.parts, shapes):
            if s != SCALAR and s != shape:
                assert first is not None
                raise self.error(
                    f"the terms of a sum have different shapes: '{self.src(first)}' is {_WORDS[shape]} and "
                    f"'{self.src(p)}' is {_WORDS[s]}",
                    p,
                    hint="terms of + and - need one shape (a scalar is added to every entry); "
                    + self.fix(node, p, shape, s),
                )
        return shape


def transposed(text: str, node: MNode) -> str:
    """``x`` -> ``xᵀ``, ``xᵀ`` -> ``x``, ``A B`` -> ``(A B)ᵀ``: the text of a node transposed."""
    if node.kind == "mark" and node.name in TRANSPOSES:
        inner = node.parts[0]
        return text[: inner.end - node.start]
    if node.kind in ("name", "group", "call", "ones", "number", "eye", "norm"):
        return text + "\u1d40"
    return f"({text})\u1d40"


def _zero_base(node: MNode) -> bool:
    value = constant(node)
    return value == 0


def infer(tree: MNode, table: dict[str, Shape], text: str) -> dict[str, Shape]:
    """Give every node of ``tree`` its shape; the variables' shapes by name."""
    table = dict(table)
    while True:  # again with the shapes a pass inferred (each pass declares at least one more name)
        shapes = Shapes(table, text)
        shapes.infer(tree)
        if not shapes.inferred:
            return shapes.names
        table.update(shapes.inferred)
