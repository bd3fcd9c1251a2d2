"""Expressions as code: numpy einsum calls, one per product term."""

from __future__ import annotations

import opt_einsum

from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Pow, Sum, Tensor
from .names import children
from .printer import number_text

__all__ = ["einsum_text"]

# Element-wise functions as numpy expressions of their argument's code.
NUMPY_CODE = {
    "exp": "np.exp({})",
    "log": "np.log({})",
    "sin": "np.sin({})",
    "cos": "np.cos({})",
    "tan": "np.tan({})",
    "tanh": "np.tanh({})",
    "sigmoid": "np.exp(-np.logaddexp(0, -({})))",
    "relu": "np.maximum({}, 0)",
    "step": "np.heaviside({}, 0)",
    "softplus": "np.logaddexp(0, {})",
    "sqrt": "np.sqrt({})",
    "abs": "np.abs({})",
    "sign": "np.sign({})",
}


class _Einsum:
    """Builds the numpy code for a node; index names map to einsum letters, sizes come from origins."""

    def __init__(self, expr: Expr) -> None:
        self.expr = expr
        self.letters: dict[str, str] = {}
        taken = set()
        stack = [expr.node]
        names: list[str] = list(expr.free)
        while stack:
            n = stack.pop()
            if isinstance(n, (Tensor, Delta, Sum)):
                names.extend(n.indices)
            stack.extend(children(n))
        for i in dict.fromkeys(names):
            if len(i) == 1 and i.isascii() and i.isalpha() and i not in taken:
                self.letters[i] = i
                taken.add(i)
        k = 0
        for i in dict.fromkeys(names):
            if i not in self.letters:
                while opt_einsum.get_symbol(k) in taken:
                    k += 1
                self.letters[i] = opt_einsum.get_symbol(k)
                taken.add(self.letters[i])

    def size_code(self, index: str, node: Node) -> str:
        for t in _tensors(node):
            if index in t.indices:
                return f"{t.name}.shape[{t.indices.index(index)}]"
        name, axis = self.expr.origins.get(index, (None, 0))
        if name is not None:
            return f"{name}.shape[{axis}]"
        for t in _tensors(self.expr.node):
            if index in t.indices:
                return f"{t.name}.shape[{t.indices.index(index)}]"
        return f"n_{index}"

    def code(self, node: Node) -> tuple[str, tuple[str, ...]]:
        if isinstance(node, Number):
            return number_text(node.value).replace("/", " / "), ()
        if isinstance(node, (Tensor, Delta, Mul)):
            return self.product(node, ())
        if isinstance(node, Sum):
            if isinstance(node.body, (Tensor, Delta, Mul)):
                return self.product(node.body, node.indices)
            inner, labels = self.code(node.body)
            axes = tuple(k for k, i in enumerate(labels) if i in node.indices)
            return f"np.sum({inner}, axis={axes})", tuple(i for i in labels if i not in node.indices)
        if isinstance(node, Func):
            inner, labels = self.code(node.arg)
            return NUMPY_CODE[node.name].format(inner), labels
        if isinstance(node, Pow):
            inner, labels = self.code(node.base)
            e = node.exponent
            exponent = str(e.numerator) if e.denominator == 1 else f"({e.numerator} / {e.denominator})"
            return f"({inner}) ** {exponent}", labels
        if isinstance(node, Add):
            labels = tuple(sorted(node.free))
            parts = [self.aligned(*self.code(t), labels) for t in node.terms]
            return "(" + " + ".join(parts) + ")", labels
        raise AssertionError(node)

    def aligned(self, code: str, labels: tuple[str, ...], target: tuple[str, ...]) -> str:
        if labels == target:
            return code
        if not labels:
            return code
        own = [i for i in target if i in labels]
        if list(labels) != own:
            code = f"np.einsum('{self.word(labels)}->{self.word(tuple(own))}', {code})"
        if len(own) == len(target):
            return code
        index = ", ".join(":" if i in labels else "None" for i in target)
        return f"{code}[{index}]"

    def word(self, labels: tuple[str, ...]) -> str:
        return "".join(self.letters[i] for i in labels)

    def product(self, node: Node, summed: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        factors = node.factors if isinstance(node, Mul) else (node,)
        coef = ""
        specs, args = [], []
        for f in factors:
            if isinstance(f, Number):
                coef = number_text(f.value).replace("/", " / ") + " * "
            elif isinstance(f, Tensor):
                specs.append(self.word(f.indices))
                args.append(f.name)
            elif isinstance(f, Delta):
                n = self.size_code(f.indices[0], self.expr.node)
                specs.append(self.word(f.indices))
                args.append(f"np.eye({n})" if len(f.indices) == 2 else f"np.ones({n})")
            else:
                inner, labels = self.code(f)
                specs.append(self.word(labels))
                args.append(inner)
        out = tuple(sorted(node.free - set(summed)))
        if not args:
            return coef.rstrip(" *") or "1", ()
        if len(args) == 1 and specs[0] == self.word(out):
            return coef + args[0], out
        return f"{coef}np.einsum('{','.join(specs)}->{self.word(out)}', {', '.join(args)})", out


def _tensors(node: Node) -> list[Tensor]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            out.append(n)
        stack.extend(children(n))
    return out


def einsum_text(expr: Expr) -> str:
    """``expr`` as one numpy expression built from ``np.einsum`` calls, axes in ``expr.free`` order.

    >>> import indexdiff as ix
    >>> print(einsum_text(ix.diff(ix.parse("x_i A_ij x_j"), "x")))
    (np.einsum('ik,i->k', A, x) + np.einsum('kj,j->k', A, x))
    """
    builder = _Einsum(expr)
    code, labels = builder.code(expr.node)
    missing = [i for i in expr.free if i not in labels]
    aligned = builder.aligned(code, labels, tuple(expr.free))
    if missing:
        shape = ", ".join(builder.size_code(i, expr.node) for i in expr.free)
        return f"np.broadcast_to({aligned}, ({shape},))"
    return aligned
