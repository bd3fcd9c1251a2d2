"""Pending derivatives of a derivation (``derivation.py``): placeholder tensors that stand for a derivative not
yet taken, how they print (``∂(u)/∂x_k``, or ``∂(f_ij = u)/∂x_k`` where u has free indices it does not show), and
``parse_step``, which reads a step's text back with each pending derivative replaced by its value."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .diff import derivative, with_indices
from .errors import DiffError
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Sum, Tensor
from .names import all_indices, children, fresh, rebuild, rename, separate, tensor_names, tensors
from .printer import _ADD, _LatexPrinter, _Printer, indices_text, written

__all__ = [
    "Record",
    "Pending",
    "StepPrinter",
    "StepLatexPrinter",
    "first_pending",
    "replace",
    "fresh_copy",
    "expanded",
    "parse_step",
]

_PENDING = "∂"  # the name prefix of a pending derivative's placeholder tensor (no tensor of the notation has it)


@dataclass(frozen=True)
class Record:
    node: Node  # the expression to differentiate
    name: str  # by this tensor
    indices: tuple[str, ...]  # the placeholder's indices as made: the node's free indices (sorted), then ``new``
    new: tuple[str, ...]


class Pending:
    """Placeholder tensors standing for derivatives not yet taken (``derivative``'s hook while a rule is taken)."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.made: dict[tuple[Node, str, tuple[str, ...]], str] = {}

    def __call__(self, node: Node, name: str, new: tuple[str, ...]) -> Node:
        key = (node, name, new)
        indices = (*sorted(node.free), *new)
        label = self.made.get(key)
        if label is None:
            label = self.made[key] = f"{_PENDING}{len(self.made) + 1}"
            self.records[label] = Record(node, name, indices, new)
        return Tensor(label, indices)

    def parts(self, label: str, indices: tuple[str, ...]) -> tuple[Expr, str, tuple[str, ...]]:
        """The pending derivative ``label`` where it stands with ``indices``: what is differentiated (free indices
        renamed to those of ``indices``, in that order), the variable and its new indices."""
        r = self.records[label]
        k = len(r.indices) - len(r.new)
        inner = rename(r.node, dict(zip(r.indices[:k], indices[:k])))
        return Expr(separate(inner, frozenset(indices)), indices[:k]), r.name, indices[k:]


class StepPrinter(_Printer):
    """Index notation with pending derivatives as ``∂(u)/∂x_k``."""

    def __init__(self, pending: Pending) -> None:
        super().__init__()
        self.pending = pending

    def tensor(self, name: str, indices: tuple[str, ...]) -> str:
        if name not in self.pending.records:
            return super().tensor(name, indices)
        inner, var, new = self.pending.parts(name, indices)
        return f"∂({written(inner, StepPrinter(self.pending))})/∂{var}{indices_text(new)}"


class StepLatexPrinter(_LatexPrinter):
    """LaTeX with pending derivatives as ``∂/∂x_k (u)``."""

    def __init__(self, pending: Pending) -> None:
        super().__init__()
        self.pending = pending

    def tensor(self, name: str, indices: tuple[str, ...]) -> str:
        if name not in self.pending.records:
            return super().tensor(name, indices)
        inner, var, new = self.pending.parts(name, indices)
        return rf"\frac{{\partial}}{{\partial {super().tensor(var, new)}}}\left({self.body(inner)}\right)"

    def body(self, expr: Expr) -> str:
        """The right-hand side of ``expr``."""
        free = frozenset(expr.free)
        return self.fmt(separate(expr.node, free), _ADD, free)


def first_pending(node: Node, pending: Pending) -> Tensor | None:
    """The first pending derivative of ``node``, reading left to right."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor) and n.name in pending.records:
            return n
        stack.extend(reversed(children(n)))
    return None


def replace(node: Node, match: Callable[[Node], Node | None]) -> Node | None:
    """``node`` with each sub-expression for which ``match`` gives a node replaced by it (None: none matched)."""
    done: dict[int, Node] = {}

    def walk(n: Node) -> Node:
        found = done.get(id(n))
        if found is None:
            found = match(n)
            if found is None:
                found = rebuild(n, tuple(walk(c) for c in children(n)))
            done[id(n)] = found
        return found

    out = walk(node)
    return None if out is node else out


def fresh_copy(node: Node) -> Node:
    """``node`` rebuilt of new objects (no results cached on them), so the simplifier reports every rewrite."""
    done: dict[int, Node] = {}

    def walk(n: Node) -> Node:
        found = done.get(id(n))
        if found is None:
            found = done[id(n)] = _NEW[type(n)](n, tuple(walk(c) for c in children(n)))
        return found

    return walk(node)


_NEW: dict[type, Callable[[Any, tuple[Node, ...]], Node]] = {
    Number: lambda n, p: Number(n.value),
    Tensor: lambda n, p: Tensor(n.name, n.indices),
    Delta: lambda n, p: Delta(n.indices),
    Func: lambda n, p: Func(n.name, p[0]),
    Pow: lambda n, p: Pow(p[0], n.exponent),
    Mul: lambda n, p: Mul(p),
    Add: lambda n, p: Add(p),
    Sum: lambda n, p: Sum(n.indices, p[0]),
    Op: lambda n, p: Op(n.name, n.indices, p[0]),
}


def expanded(pending: Pending, results: dict[str, Node]) -> Callable[[Node], Node | None]:
    """For ``replace``: each pending derivative of ``results`` is its result, wherever it stands (with the indices
    it has there)."""

    def match(n: Node) -> Node | None:
        if not (isinstance(n, Tensor) and n.name in results):
            return None
        return rename(results[n.name], dict(zip(pending.records[n.name].indices, n.indices)))

    return match


# -- reading a step back ----------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\)/∂([^\W\d_]\w*(?:_\{[^}]*\}|_[^\W_]+)?)")


def parse_step(text: str) -> Expr:
    """A step's expression as an ``Expr``: each pending derivative ``∂(u)/∂x_k`` (u an expression or a statement
    naming its indices) replaced by its value, ``ix.diff``'s derivative of u, so that the step evaluates."""
    from .parser import parse

    table: dict[str, tuple[Expr, str, tuple[str, ...]]] = {}
    pieces = []
    at = 0
    while (start := text.find("∂(", at)) >= 0:
        depth, end = 0, start + 1
        for end in range(start + 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        found = _VARIABLE.match(text, end)
        if depth or found is None:
            raise DiffError(
                "a pending derivative is written ∂(u)/∂x_k", text=text, pos=start, end=end + 1, hint="close it"
            )
        inner = parse_step(text[start + 2 : end])
        spec = found.group(1)
        var, *rest = spec.split("_", 1)
        new = _indices(rest[0]) if rest else ()
        label = f"Zpending{len(table) + 1}"
        while label in text:
            label += "z"
        table[label] = (inner, var, new)
        pieces.append(text[at:start] + label + indices_text((*inner.free, *new)))
        at = found.end()
    parsed = parse("".join(pieces) + text[at:])
    if not isinstance(parsed, Expr):
        raise DiffError("a step is one expression or statement", text=text, hint="pass one line")

    def resolve(n: Node) -> Node | None:
        if not (isinstance(n, Tensor) and n.name in table):
            return None
        inner, var, new = table[n.name]
        own = fresh(all_indices(inner.node) | set(inner.free) | tensor_names(inner.node), len(new))
        d = with_indices(derivative(separate(inner.node, frozenset((*inner.free, *own))), var, own), frozenset())
        return rename(d, dict(zip((*inner.free, *own), n.indices)))

    node = replace(parsed.node, resolve) or parsed.node
    variables = {t.name: len(t.indices) for t in tensors(node)}
    for _, var, new in table.values():
        variables.setdefault(var, len(new))
    return Expr(node, parsed.free, parsed.name, variables)


def _indices(text: str) -> tuple[str, ...]:
    if text.startswith("{"):
        return tuple(i for i in text.strip("{}").split(",") if i)
    return tuple(text)
