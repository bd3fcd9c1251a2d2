"""How compiled plans run: the plan (steps filling value slots, each intermediate let go after its last use and
written into by an element-wise step that reads it last: inplace.py), and each step: contractions (a matrix product,
a sum over axes, np.einsum or an opt_einsum plan) and diagonals; sums and element-wise products are in inplace.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import opt_einsum

from .backends import Backend
from .byhand import hand_contraction, matrix_product
from .inplace import ENABLED

__all__ = [
    "SMALL",
    "Plan",
    "broadcast_shape",
    "contraction",
    "diagonal",
    "product_step",
]

Labels = tuple[str, ...]
Step = Callable[[list[Any]], Any]

#: Below this many multiply-adds (the naive einsum's), one direct np.einsum call beats a planned contraction,
#: whose per-call overhead (about 10 µs) would dominate.
SMALL = 4096


def contraction(spec: str, shapes: list[tuple[int, ...]], numpy: bool) -> Callable[..., Any]:
    """The contraction for ``spec``: opt_einsum's planned path, or plain np.einsum when it is tiny."""
    inputs, output = spec.split("->")
    if numpy and len(shapes) == 2:
        product = _matrix_product(inputs.split(","), output) or _batched_product(inputs.split(","), output, shapes)
        if product is not None:
            return product
    if numpy and len(shapes) == 1 and len(set(inputs)) == len(inputs) and set(output) < set(inputs):
        # A sum over axes of one array: ndarray.sum, as by hand (np.einsum and opt_einsum take longer).
        axes = tuple(k for k, c in enumerate(inputs) if c not in output)
        kept = [c for c in inputs if c in output]
        order = tuple(kept.index(c) for c in output)
        if order == tuple(range(len(order))):
            return lambda x: x.sum(axis=axes)
        return lambda x: x.sum(axis=axes).transpose(order)
    if len(shapes) > 1 and all(term == output for term in inputs.split(",")):
        # An element-wise product (nothing summed, the same axes everywhere): multiply, as numpy would by hand.
        def multiply(*ops: Any) -> Any:
            value = ops[0] * ops[1]
            for op in ops[2:]:
                value = value * op
            return value

        return multiply
    sizes: dict[str, int] = {}
    for term, shape in zip(spec.split("->")[0].split(","), shapes):
        sizes.update(zip(term, shape))
    naive = 1
    for n in sizes.values():
        naive *= n
    if numpy and naive <= SMALL and spec.isascii():  # np.einsum takes 52 letters; opt_einsum any number
        return lambda *ops: np.einsum(spec, *ops)
    if numpy and len(shapes) > 2:  # as by hand: element-wise products, broadcasts, one matrix product (byhand.py)
        found = hand_contraction(inputs.split(","), output, sizes, lambda s, sh: contraction(s, sh, True))
        if found is not None:
            return found
    return opt_einsum.contract_expression(spec, *shapes)


def _matrix_product(terms: list[str], output: str) -> Callable[..., Any] | None:
    """``a @ b`` for a two-operand contraction that is one matrix product (matrix_product); None otherwise."""
    form = matrix_product(terms, output)
    if form is None:
        return None
    # One small function per case: this runs on every call, for tiny operands too.
    forms: dict[tuple[bool, bool], Callable[[Any, Any], Any]] = {
        (False, False): lambda a, b: a @ b,
        (True, False): lambda a, b: a.T @ b,
        (False, True): lambda a, b: a @ b.T,
        (True, True): lambda a, b: a.T @ b.T,
    }
    product = forms[form.transpose_left, form.transpose_right]
    return product if form.left == 0 else lambda a, b: product(b, a)


def _batched_product(terms: list[str], output: str, shapes: list[tuple[int, ...]]) -> Callable[..., Any] | None:
    """``np.matmul`` over batch axes (indices of both operands and the output) for a two-operand contraction that
    sums at least one index, as ``Q @ K.transpose(0, 2, 1)``; the result is a view in ``output``'s axis order.
    np.einsum and opt_einsum use no BLAS once a summed index shares its product with a batch index."""
    t1, t2 = terms
    if len(set(t1)) < len(t1) or len(set(t2)) < len(t2):
        return None
    summed = [c for c in t1 if c in t2 and c not in output]
    if not summed or set(output) != (set(t1) | set(t2)) - set(summed):
        return None
    batch = [c for c in output if c in t1 and c in t2]
    free = [[c for c in output if c in t and c not in batch] for t in (t1, t2)]
    # The operand whose free index comes first in the output goes on the left (the result then needs no transpose).
    first = [output.index(f[0]) if f else len(output) for f in free]
    left = 0 if first[0] <= first[1] else 1
    order = (left, 1 - left)
    size = dict(zip(t1, shapes[0])) | dict(zip(t2, shapes[1]))
    lead = tuple(size[c] for c in batch)
    axes, views = [], []
    for side, k in enumerate(order):  # the left operand as (batch, rows, summed), the right as (batch, summed, cols)
        rows, cols = (free[k], summed) if side == 0 else (summed, free[k])
        axes.append(tuple(terms[k].index(c) for c in (*batch, *rows, *cols)))
        views.append((*lead, math.prod(size[c] for c in rows), math.prod(size[c] for c in cols)))
    labels = [*batch, *free[order[0]], *free[order[1]]]
    result_shape = tuple(size[c] for c in labels)
    back = tuple(labels.index(c) for c in output)

    def matmul(*ops: Any) -> Any:
        a = ops[order[0]].transpose(axes[0]).reshape(views[0])
        b = ops[order[1]].transpose(axes[1]).reshape(views[1])
        return np.matmul(a, b).reshape(result_shape).transpose(back)

    return matmul


def diagonal(spec: str, shape: tuple[int, ...], dtype: Any, backend: Backend, like: Any) -> Callable[[Any], Any]:
    """Writes a contraction's result onto the diagonal its output indices share (δ between two of them)."""
    if backend.name == "numpy":

        def embed(value: Any) -> Any:
            full = np.zeros(shape, dtype=np.result_type(value, dtype))
            np.einsum(spec, full)[...] = value
            return full

        return embed
    # Other libraries have no writable diagonal views: multiply by identities instead.
    full, reduced = spec.split("->")
    letters, terms, eyes = list(full), [reduced], []
    for k, c in enumerate(full):
        if c in full[:k]:
            letters[k] = opt_einsum.get_symbol(200 + k)
            terms.append(c + letters[k])
            eyes.append(backend.eye(shape[k], like))
    shapes = [tuple(shape[full.index(c)] for c in reduced), *(e.shape for e in eyes)]
    contract = opt_einsum.contract_expression(",".join(terms) + "->" + "".join(letters), *shapes)
    return lambda value: contract(value, *eyes)


def product_step(
    contraction: Any,
    sources: tuple[int, ...],
    ones: tuple[Any, ...],
    coef: float,
    diagonal: Callable[[Any], Any] | None,
    scale: int | None = None,
) -> Step:
    """A product's step: ``coef`` multiplies operand ``scale`` (one smaller than the result: ``0.125 Q_bia K_bja``
    scales Q, as one would by hand) or, when None, the result."""
    if coef != 1.0 and scale is not None:

        def scaled(v: list[Any]) -> Any:
            ops = [v[s] for s in sources]
            ops[scale] = ops[scale] * coef
            value = contraction(*ops, *ones)
            return value if diagonal is None else diagonal(value)

        return scaled

    if coef == 1.0 and diagonal is None and not ones and len(sources) <= 2:  # the common cases, called directly
        first, last = sources[0], sources[-1]
        if len(sources) == 1:
            return lambda v: contraction(v[first])
        return lambda v: contraction(v[first], v[last])

    def run(v: list[Any]) -> Any:
        value = contraction(*(v[s] for s in sources), *ones)
        if coef != 1.0:
            value = value * coef
        return value if diagonal is None else diagonal(value)

    return run


def broadcast_shape(own: Labels, target: Labels, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape that lines ``own`` axes up with ``target`` (1 where a term lacks an index); None if already so."""
    if own == target:
        return None
    sizes = dict(zip(own, shape))
    return tuple(sizes.get(i, 1) for i in target)


class _Reads(list):  # type: ignore[type-arg]
    """The value list as a step sees it on a plan's first run, noting which values the step reads."""

    seen: set[int]

    def __getitem__(self, k: Any) -> Any:
        self.seen.add(k if k >= 0 else len(self) + k)
        return list.__getitem__(self, k)


class Plan:
    """Steps that fill value slots in order; the first slots hold the inputs."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.steps: list[Step] = []
        self.outputs: list[Step] = []
        self.release: list[list[int]] | None = None  # per step, the values it reads last (from the first run)
        self._run: Callable[[dict[str, Any]], list[Any]] = self._traced

    def add(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.names) + len(self.steps) - 1

    def run(self, arrays: dict[str, Any]) -> list[Any]:
        """The outputs' values for the input ``arrays`` (by name)."""
        return self._run(arrays)

    def _traced(self, arrays: dict[str, Any]) -> list[Any]:
        """The first run: records which values each step reads, so that later runs let each value go after the
        step that reads it last (as hand-written code lets it go) and element-wise steps may write into it."""
        reads = _Reads(arrays[n] for n in self.names)
        last: dict[int, int] = {}
        for n, step in enumerate(self.steps):
            reads.seen = set()
            reads.append(step(reads))
            last.update(dict.fromkeys(reads.seen, n))
        reads.seen = set()
        out = [f(reads) for f in self.outputs]
        kept = reads.seen | set(range(len(self.names)))  # outputs, and the caller's arrays
        release: list[list[int]] = [[] for _ in self.steps]
        for k, n in last.items():
            if k not in kept:
                release[n].append(k)
        self.release = release
        if ENABLED:  # element-wise steps write into an operand they read last (inplace.py)
            base = len(self.names)
            for n, step in enumerate(self.steps):
                make = getattr(step, "inplace", None)
                better = make(set(release[n]), reads, base + n) if make is not None else None
                if better is not None:
                    self.steps[n] = better
        self._run = _straight(self.names, self.steps, release, self.outputs)
        return out


def _straight(names: tuple[str, ...], steps: list[Step], release: list[list[int]], outputs: list[Step]) -> Any:
    """Plan.run's loop as straight-line code (a few µs per call less for small arrays): each step's call in
    order, each value set to None after the step that reads it last, then the outputs."""
    scope: dict[str, Any] = {"steps": steps, "outputs": outputs}
    lines = [
        "def run(arrays):",
        f"    values = [{', '.join(f'arrays[{n!r}]' for n in names)}]",
        "    append = values.append",
    ]
    for n, done in enumerate(release):
        scope[f"s{n}"] = steps[n]
        lines.append(f"    append(s{n}(values))")
        lines += [f"    values[{k}] = None" for k in done]
    scope.update((f"o{n}", out) for n, out in enumerate(outputs))
    lines.append(f"    return [{', '.join(f'o{n}(values)' for n in range(len(outputs)))}]")
    exec("\n".join(lines), scope)  # noqa: S102 - text made here from slot numbers and the inputs' names
    return scope["run"]
