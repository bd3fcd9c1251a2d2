"""Programs of statements: substituting definitions into the statements that use them."""

from __future__ import annotations

from .errors import IndexDiffError
from .expr import Add, Expr, Func, Mul, Node, Pow, Program, Sum, Tensor
from .names import SUMMED_ORDER, all_indices, children, fresh, rename

__all__ = ["inline"]


def _substitute(node: Node, definitions: dict[str, Expr]) -> Node:
    """``node`` with each defined tensor replaced by its definition, indices renamed to the use's."""
    if isinstance(node, Tensor):
        d = definitions.get(node.name)
        if d is None:
            return node
        body = d.node
        # Summed indices of the definition must not collide with the use's indices.
        summed = all_indices(body) - set(d.free)
        clash = summed & set(node.indices)
        if clash:
            new = fresh(all_indices(body) | set(node.indices), len(clash), SUMMED_ORDER)
            body = _rename_bound(body, dict(zip(sorted(clash), new)))
        temp = fresh(all_indices(body) | set(node.indices), len(d.free), "αβγεζηθικλμνξοπρστυφχψω")
        body = rename(body, dict(zip(d.free, temp)))
        return rename(body, dict(zip(temp, node.indices)))
    parts = children(node)
    if not parts:
        return node
    new_parts = tuple(_substitute(p, definitions) for p in parts)
    return _rebuild(node, new_parts)


def _rename_bound(node: Node, mapping: dict[str, str]) -> Node:
    if isinstance(node, Sum):
        indices = tuple(sorted(mapping.get(j, j) for j in node.indices))
        inner = {j: mapping[j] for j in node.indices if j in mapping}
        return Sum(indices, _rename_bound(rename(node.body, inner), mapping))
    parts = children(node)
    return _rebuild(node, tuple(_rename_bound(p, mapping) for p in parts)) if parts else node


def _rebuild(node: Node, parts: tuple[Node, ...]) -> Node:
    if isinstance(node, Mul):
        return Mul(parts)
    if isinstance(node, Add):
        return Add(parts)
    if isinstance(node, Func):
        return Func(node.name, parts[0])
    if isinstance(node, Pow):
        return Pow(parts[0], node.exponent)
    if isinstance(node, Sum):
        return Sum(node.indices, parts[0])
    raise AssertionError(node)


def inline(program: Program, output: str | None = None) -> Expr:
    """The last statement (or ``output``) as one expression of the program's inputs."""
    definitions: dict[str, Expr] = {}
    target = None
    for s in program.statements:
        assert s.name is not None
        node = _substitute(s.node, definitions)
        variables = {}
        for name, rank in s.variables.items():
            if name in definitions:
                variables.update(definitions[name].variables)
            else:
                variables[name] = rank
        origins = {}
        for i, (name, axis) in s.origins.items():
            if name in definitions:
                origins[i] = definitions[name].origins.get(definitions[name].free[axis], (name, axis))
            else:
                origins[i] = (name, axis)
        definitions[s.name] = target = Expr(node, s.free, s.name, variables, origins)
        if s.name == output:
            break
    if output is not None and (target is None or target.name != output):
        raise IndexDiffError(
            f"the program defines no '{output}'", str(program), hint=f"choose one of: {', '.join(program.names)}"
        )
    assert target is not None
    return target
