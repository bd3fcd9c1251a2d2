"""Programs of statements: substituting definitions into the statements that use them."""

from __future__ import annotations

from .errors import IndexDiffError
from .expr import Expr, Node, Program, Tensor
from .names import children, rebuild, rename

__all__ = ["inline"]


def _substitute(node: Node, definitions: dict[str, Expr]) -> Node:
    """``node`` with each defined tensor replaced by its definition, indices renamed to the use's."""
    if isinstance(node, Tensor):
        d = definitions.get(node.name)
        if d is None:
            return node
        # Simultaneous and capture-avoiding: the definition's summed indices move out of the use's way.
        return rename(d.node, dict(zip(d.free, node.indices)))
    parts = children(node)
    if not parts:
        return node
    new_parts = tuple(_substitute(p, definitions) for p in parts)
    return rebuild(node, new_parts)


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
