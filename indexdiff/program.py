"""Programs of statements: their derivative programs as code, and substituting definitions (for small uses).

Every public route works on programs statement by statement; ``inline`` builds one tree, whose size can grow
exponentially with the program's length, and is kept for small internal uses and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import IndexDiffError
from .expr import Expr, Node, Program, Tensor
from .names import children, rebuild, rename

__all__ = ["used", "inline", "outputs_of", "program_einsum", "program_latex", "gradient_text", "merged"]


def used(statements: Sequence[Expr], outputs: Sequence[str]) -> tuple[Expr, ...]:
    """The statements that compute ``outputs``, in order: each output's statement, what it uses, and the tensors its
    indices take their lengths from."""
    wanted = set(outputs)
    for s in reversed(statements):
        if s.name in wanted:
            wanted.update(s.variables)
            wanted.update(name for name, _ in s.origins.values())
    return tuple(s for s in statements if s.name in wanted)


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


def outputs_of(program: Program, chains: Sequence[Sequence[str]], loss: str | None = None) -> list[Program]:
    """The program up to ``loss`` (what it needs of it) and its derivative program for each chain of variables."""
    from .diff import diff
    from .forward import needed

    base = Program(needed(program, loss))
    return [base, *(diff(base, *chain) for chain in chains)]


def _lines(programs: Sequence[Program], render: Callable[[Expr], str]) -> list[str]:
    """Each program's statements in turn, a statement already written identically (the shared forward pass, an
    adjoint two derivatives use) once: later statements then read the same values by name."""
    written: dict[str | None, str] = {}
    lines = []
    for p in programs:
        for s in p.statements:
            line = render(s)
            if written.get(s.name) != line:
                written[s.name] = line
                lines.append(line)
    return lines


def program_einsum(programs: Sequence[Program]) -> str:
    """Programs as numpy code, one assignment per statement: ``h = np.tanh(np.einsum('ij,j->i', W, x))``."""
    from .codegen import einsum_text, python_names
    from .simplify import simplify

    tensors_used: dict[str, int] = {}
    for p in programs:
        tensors_used.update(p.inputs)
        tensors_used.update({s.name: len(s.free) for s in p.statements if s.name is not None})
    names = python_names(tensors_used)

    def render(s: Expr) -> str:
        stable = Expr(simplify(s.node, frozenset(s.free)), s.free, s.name, s.variables, s.origins)
        return f"{names[s.name or '']} = {einsum_text(stable, names)}"

    return "\n".join(_lines(programs, render))


def program_latex(programs: Sequence[Program]) -> str:
    """Programs in LaTeX, one equation per statement."""
    from .printer import to_latex

    return "\n".join(_lines(programs, to_latex))


def gradient_text(program: Program, loss: str | None, chains: Sequence[Sequence[str]]) -> str:
    """A program's derivatives as statements: its backward pass (``ix.grad``, all gradients in one pass) when each
    chain is one variable and the loss a scalar, else the derivative programs (``ix.diff``) one after another."""
    from .forward import needed
    from .reverse import grad

    if all(len(chain) == 1 for chain in chains) and not needed(program, loss)[-1].free:
        return str(grad(program, loss, [chain[0] for chain in chains]))
    return "\n".join(_lines(outputs_of(program, chains, loss), str))


def _renamed_tensors(node: Node, mapping: dict[str, str]) -> Node:
    if isinstance(node, Tensor):
        return Tensor(mapping.get(node.name, node.name), node.indices)
    parts = children(node)
    return rebuild(node, tuple(_renamed_tensors(p, mapping) for p in parts)) if parts else node


def _renamed(s: Expr, mapping: dict[str, str], name: str | None) -> Expr:
    """The statement ``s`` named ``name``, reading the tensors ``mapping`` renames under their new names."""
    variables = {mapping.get(n, n): r for n, r in s.variables.items()}
    origins = {i: (mapping.get(n, n), axis) for i, (n, axis) in s.origins.items()}
    return Expr(_renamed_tensors(s.node, mapping), s.free, name, variables, origins)


def merged(items: Sequence[Expr | Program]) -> Program:
    """Programs and expressions as one program whose outputs are each one's value (a program's last statement).

    A statement several of them share (a derivative program's forward pass) is computed once; a different
    statement under a name already used is renamed, and so are the uses after it."""
    from .jacobian import unique_name

    defined = {n for item in items if isinstance(item, Program) for n in item.names}
    for item in items:
        inputs = item.inputs if isinstance(item, Program) else item.variables
        clash = sorted(set(inputs) & defined)
        if clash:
            raise IndexDiffError(
                f"'{clash[0]}' is an input of one of the expressions compiled together and defined by another",
                str(item),
                hint="compile them separately",
            )
    taken = set(defined) | {n for item in items for n in (item.inputs if isinstance(item, Program) else item.variables)}
    written: dict[str, Expr] = {}
    statements: list[Expr] = []
    outputs: list[str] = []
    for item in items:
        mapping: dict[str, str] = {}
        for s in item.statements if isinstance(item, Program) else (item,):
            s = _renamed(s, mapping, s.name or unique_name("f", taken))
            have = written.get(s.name or "")
            if have is not None and have == s:
                continue
            if have is not None:
                mapping[s.name or ""] = new = unique_name(s.name or "f", taken)
                s = _renamed(s, {}, new)
            written[s.name or ""] = s
            statements.append(s)
        last = item.statements[-1].name if isinstance(item, Program) else item.name
        outputs.append(mapping.get(last or "", last or statements[-1].name or ""))
    return Program(tuple(statements), tuple(outputs))
