"""An independent reference for the operator fuzzer: the parsed tree (explicit nodes) evaluated with numpy, written
without indexdiff's evaluator. Operators by hand: softmax and log-sum-exp shifted by the maximum, mean, max, min,
the tie-splitting indicators, and inverse, determinant and log-determinant by Gauss-Jordan elimination with partial
pivoting (no numpy.linalg). Index lengths are found per scope (a letter bound by a Σ or an operator may have another
length than the same letter elsewhere), from the tensors' axes, through δs and matrix functions' arguments.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from indexdiff.expr import Add, Delta, Expr, Func, Mul, Number, Op, Pow, Program, Sum, Tensor, bound_indices


def _gauss_jordan(m: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The inverse, the sign of the determinant and log|det| of one square matrix, by Gauss-Jordan elimination
    with partial pivoting (no numpy.linalg)."""
    n = m.shape[0]
    a = np.concatenate([m.astype(np.float64), np.eye(n)], axis=1)
    sign, logabs = 1.0, 0.0
    for col in range(n):
        pivot = col + int(np.argmax(np.abs(a[col:, col])))
        if a[pivot, col] == 0:
            return np.full((n, n), np.nan), 0.0, -np.inf
        if pivot != col:
            a[[col, pivot]] = a[[pivot, col]]
            sign = -sign
        p = a[col, col]
        sign *= np.sign(p)
        logabs += np.log(abs(p))
        a[col] /= p
        for row in range(n):
            if row != col:
                a[row] -= a[row, col] * a[col]
    return a[:, n:], sign, logabs


def _softmax(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    e = np.exp(a - a.max(axis=axes, keepdims=True))
    return e / e.sum(axis=axes, keepdims=True)


def _logsumexp(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    m = a.max(axis=axes, keepdims=True)
    return np.squeeze(m, axis=axes) + np.log(np.exp(a - m).sum(axis=axes))


def _indicator(a: np.ndarray, axes: tuple[int, ...], pick) -> np.ndarray:  # noqa: ANN001
    hit = (a == pick(a, axis=axes, keepdims=True)).astype(float)
    return hit / hit.sum(axis=axes, keepdims=True)


def _matrix(name: str, a: np.ndarray) -> np.ndarray:
    inverse, sign, logabs = _gauss_jordan(a)
    if name == "inv":
        return inverse
    if name == "det":
        return np.array(sign * np.exp(logabs))
    return np.array(logabs if sign > 0 else np.nan)


INDEX_OPERATORS = {
    "softmax": _softmax,
    "logsumexp": _logsumexp,
    "mean": lambda a, axes: a.mean(axis=axes),
    "max": lambda a, axes: a.max(axis=axes),
    "min": lambda a, axes: a.min(axis=axes),
    "ismax": lambda a, axes: _indicator(a, axes, np.max),
    "ismin": lambda a, axes: _indicator(a, axes, np.min),
}

FUNCTIONS = {
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0),
    "sqrt": np.sqrt,
    "relu": lambda x: np.maximum(x, 0.0),
    "step": lambda x: (x > 0).astype(float),
    "abs": np.abs,
    "sign": np.sign,
}

Value = tuple[np.ndarray, tuple[str, ...]]


def _align(value: Value, labels: tuple[str, ...], sizes: Mapping[str, int]) -> np.ndarray:
    """``value`` with axes ``labels`` (broadcast along the ones it lacks)."""
    a, own = value
    order = [own.index(i) for i in labels if i in own]
    a = np.transpose(a, order) if order else a
    shape = [_size(sizes, i) if i in own else 1 for i in labels]
    return np.broadcast_to(a.reshape(shape), tuple(_size(sizes, i) for i in labels))


def _size(sizes: Mapping[str, int], i: str) -> int:
    """The length of ``i`` in this scope, else the length given for the letter ``i`` (``sizes["*i"]``), else
    ``sizes["*"]``, every index's length (when the check gave one length to all)."""
    for key in (i, "*" + i, "*"):
        if key in sizes:
            return sizes[key]
    raise KeyError(i)


def _eval(node, arrays: Mapping[str, np.ndarray], sizes: Mapping[str, int]) -> Value:  # noqa: ANN001, C901
    if isinstance(node, Number):
        return np.array(float(node.value)), ()
    if isinstance(node, Tensor):
        a = np.asarray(arrays[node.name], dtype=np.float64)
        labels = tuple(dict.fromkeys(node.indices))
        spec = "".join(chr(97 + labels.index(i)) for i in node.indices)
        return np.einsum(f"{spec}->{''.join(chr(97 + k) for k in range(len(labels)))}", a), labels
    if isinstance(node, Delta):
        labels = tuple(dict.fromkeys(node.indices))
        grids = np.meshgrid(*[np.arange(_size(sizes, i)) for i in labels], indexing="ij")
        same = np.ones(tuple(_size(sizes, i) for i in labels))
        for g in grids[1:]:
            same = same * (g == grids[0])
        return same, labels
    if isinstance(node, Func):
        a, labels = _eval(node.arg, arrays, sizes)
        return FUNCTIONS[node.name](a), labels
    if isinstance(node, Pow):
        a, labels = _eval(node.base, arrays, sizes)
        return np.power(a, float(node.exponent)), labels
    if isinstance(node, (Mul, Add)):
        parts = [_eval(p, arrays, sizes) for p in (node.factors if isinstance(node, Mul) else node.terms)]
        labels = tuple(sorted(node.free))
        out = _align(parts[0], labels, sizes).copy()
        for p in parts[1:]:
            out = out * _align(p, labels, sizes) if isinstance(node, Mul) else out + _align(p, labels, sizes)
        return out, labels
    if isinstance(node, Sum):
        a, labels = _eval(node.body, arrays, _inside(node, sizes, arrays))
        times = np.prod([_size(sizes, i) for i in node.indices if i not in labels])  # Σ_j of a value constant in j
        axes = tuple(labels.index(i) for i in node.indices if i in labels)
        return a.sum(axis=axes) * times, tuple(i for i in labels if i not in node.indices)
    if isinstance(node, Op):
        inner = _inside(node, sizes, arrays) if bound_indices(node) else sizes
        value = _eval(node.arg, arrays, inner)
        sizes = inner
        labels = tuple(sorted(set(value[1]) | set(node.indices)))
        a = _align(value, labels, sizes)
        if node.name in ("inv", "det", "logdet"):
            r, c = sorted(node.arg.free)
            a = _align((a, labels), (r, c), sizes)
            out = _matrix(node.name, a)
            return (out, (r, c)) if node.name == "inv" else (out, ())
        axes = tuple(labels.index(i) for i in node.indices)
        out = INDEX_OPERATORS[node.name](a, axes)
        if node.name in ("softmax", "ismax", "ismin"):
            return out, labels
        return out, tuple(i for i in labels if i not in node.indices)
    raise AssertionError(node)


def _scope_sizes(node, letters: frozenset[str], arrays: Mapping[str, np.ndarray], known: Mapping[str, int]):  # noqa: ANN001, ANN202
    """Lengths of ``letters`` in the scope of ``node`` (not below a Σ or operator that binds them again): from the
    tensors' axes, spread through δs and matrix functions' arguments; ``known``: lengths of the enclosing scope."""
    sizes: dict[str, int] = {}
    pairs = []
    stack = [(node, letters)]
    while stack:
        n, mine = stack.pop()
        if isinstance(n, Tensor):
            sizes.update((i, s) for i, s in zip(n.indices, np.shape(arrays[n.name])) if i in mine)
        if isinstance(n, Delta) and len(n.indices) == 2:
            pairs.append(n.indices)
        if isinstance(n, Op) and n.name in ("inv", "det", "logdet"):
            pairs.append(tuple(sorted(n.arg.free)))
        inner = mine - set(bound_indices(n))
        stack += [(getattr(n, a), inner) for a in ("arg", "base", "body") if hasattr(n, a)]
        stack += [(c, inner) for c in getattr(n, "factors", ()) + getattr(n, "terms", ())]
    for _ in range(len(pairs) + 1):
        for a, b in pairs:
            both = {**known, **sizes}
            for x, y in ((a, b), (b, a)):
                if x in letters and x not in sizes and y in both:
                    sizes[x] = both[y]
    return sizes


def _inside(node, sizes: Mapping[str, int], arrays: Mapping[str, np.ndarray]) -> dict[str, int]:  # noqa: ANN001
    """The lengths inside ``node`` (a Σ or a binding operator): its own letters are new ones."""
    own = frozenset(bound_indices(node))
    outer = {i: n for i, n in sizes.items() if i not in own}
    body = node.body if isinstance(node, Sum) else node.arg
    return {**outer, **_scope_sizes(body, own, arrays, outer)}


def _letters(node) -> set[str]:  # noqa: ANN001
    out = set(getattr(node, "indices", ()))
    for child in [getattr(node, a) for a in ("arg", "base", "body") if hasattr(node, a)]:
        out |= _letters(child)
    for child in getattr(node, "factors", ()) + getattr(node, "terms", ()):
        out |= _letters(child)
    return out


def reference(x: Expr | Program, arrays: Mapping[str, np.ndarray], dims: Mapping[str, int] | None = None) -> np.ndarray:
    """The value of an expression (axes in ``x.free`` order) or of a program's last statement, independently of
    indexdiff's evaluator."""
    arrays = dict(arrays)
    for s in x.statements if isinstance(x, Program) else (x,):
        letters = frozenset(_letters(s.node)) | frozenset(s.free)
        sizes = {**(dims or {}), **_scope_sizes(s.node, letters, arrays, dims or {})}
        sizes.update({"*" + i: n for i, n in (dims or {}).items()})
        if dims and len(set(dims.values())) == 1:
            sizes["*"] = next(iter(dims.values()))
        with np.errstate(all="ignore"):
            value = _eval(s.node, arrays, sizes)
        out = np.asarray(_align(value, s.free, sizes), dtype=np.float64)
        if s.name:
            arrays[s.name] = out
    return out


def agrees(got: object, want: np.ndarray, rtol: float = 1e-8) -> bool:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)))
    both_nan = np.isnan(got) & np.isnan(want)
    return bool(np.all(both_nan | (np.abs(got - want) <= rtol * (scale + np.abs(want)))))
