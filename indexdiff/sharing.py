"""How compiled plans share work by structure: keys that identify a node up to the names of its free indices, and
the first contraction of a large sum (opt_einsum's path), which such keys let several sums share (the scatter matrix
Σ_n r_ni r_nj of a quadratic form's value and of its gradient)."""

from __future__ import annotations

import math
from typing import Any

import opt_einsum

from .canonical import canonical
from .expr import Delta, Node, Number, Tensor
from .names import rename
from .steps import SMALL

__all__ = ["structure_keys", "first_pair"]


def structure_keys(node: Node) -> list[Any]:
    """Keys equal for nodes equal up to the names of their free indices (taken in sorted order): the first with the
    indices as they stand, and for two free indices a second with them swapped. A node whose second key is
    another's first is that node transposed."""
    free = sorted(node.free)
    orders = [tuple(range(len(free)))] + ([(1, 0)] if len(free) == 2 else [])
    return [canonical(rename(node, {i: f"#{o}" for i, o in zip(free, order)})) for order in orders]


def first_pair(
    factors: tuple[Node, ...], summed: frozenset[str], sizes: dict[str, int]
) -> tuple[int, int, tuple[str, ...]] | None:
    """For Σ_summed of the product ``factors`` (three or more besides numbers): the positions of the two factors
    opt_einsum contracts first and the summed indices that contraction removes. None when it removes none or is
    small (at most ``SMALL`` multiply-adds), or when a factor is a delta, a tensor with a repeated index, or has an
    index of unknown length."""
    operands = [k for k, f in enumerate(factors) if not isinstance(f, Number)]
    if len(operands) < 3:
        return None
    labels = []
    for k in operands:
        f = factors[k]
        if isinstance(f, Delta) or (isinstance(f, Tensor) and len(set(f.indices)) < len(f.indices)):
            return None
        labels.append(f.indices if isinstance(f, Tensor) else tuple(sorted(f.free)))
    every = dict.fromkeys(i for own in labels for i in own)
    if any(i not in sizes for i in every):
        return None
    symbol = {i: opt_einsum.get_symbol(k) for k, i in enumerate(every)}
    out = "".join(symbol[i] for i in every if i not in summed)
    spec = ",".join("".join(symbol[i] for i in own) for own in labels) + "->" + out
    a, b = opt_einsum.contract_path(spec, *([sizes[i] for i in own] for own in labels), shapes=True)[0][0]
    pair = set(labels[a]) | set(labels[b])
    rest = [own for k, own in enumerate(labels) if k not in (a, b)]
    gone = tuple(sorted(i for i in pair & summed if not any(i in own for own in rest)))
    if not gone or math.prod(sizes[i] for i in pair) <= SMALL:
        return None
    return operands[a], operands[b], gone
