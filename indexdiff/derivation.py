"""Step-by-step derivations (``ix.steps``): each step is one named rule of ``diff.py`` or ``simplify.py``, shown
on the whole expression.

The rules are not written again here. A tracer (``trace.TRACE``) is set while a derivation runs: ``derivative``
then takes one rule and leaves each derivative it would recurse into pending, and the simplifier reports each
rewrite it makes (a δ contraction, like terms merged, ...), which is applied to the whole expression as one step.
A pending derivative prints as ``∂(u)/∂x_k``; where u has free indices besides the ones it is written with, it
prints as a statement, ``∂(f_ij = x_i A_ij x_j)/∂x_k`` (nothing in it is summed). ``parse_step`` reads such text
back, each pending derivative replaced by its value, so every step can be evaluated (``steps.py``'s tests do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .diff import RULES, _wrt, derivative, with_indices
from .display import aligned, latex_text, statement_latex
from .errors import ArgumentError, DiffError, IndexDiffError, expect_specs
from .expr import ZERO, Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Program, Sum, Tensor, deep
from .names import all_indices, children, fresh, rebuild, rename, separate, share, tensor_names, tensors
from .printer import _ADD, _LatexPrinter, _Printer, indices_text, node_text, written
from .trace import TRACE

__all__ = ["Step", "Derivation", "steps", "parse_step"]

_PENDING = "∂"  # the name prefix of a pending derivative's placeholder tensor (no tensor of the notation has it)


@dataclass(frozen=True)
class Step:
    """One rule. ``before`` and ``after`` are index notation that parses back (``parse_step``: pending derivatives
    are written ``∂(u)/∂x_k``); ``note`` is the rule's formula or the sub-expression it rewrote; ``lhs`` is the
    left-hand side of a statement's step (a program's adjoint), else empty; ``*_latex`` are right-hand sides and
    the left-hand side in LaTeX."""

    rule: str
    before: str
    after: str
    note: str = ""
    before_latex: str = ""
    after_latex: str = ""
    lhs: str = ""
    lhs_latex: str = ""


def _rhs_text(text: str, lhs: str) -> str:
    return text.removeprefix(f"{lhs} = ") if lhs else text


class Derivation(list[Step]):
    """The steps of a derivation, in order. ``str()`` numbers them: each step's rule, its note, and the expression
    it gives (with the expression it starts from where that is not the one before); ``latex()`` is an aligned
    block with the rules as annotations (Jupyter shows it). ``title`` is what the derivation starts from (for a
    program: its forward statements)."""

    def __init__(self, steps: Sequence[Step], title: Sequence[Expr] = ()) -> None:
        super().__init__(steps)
        self.title = tuple(title)

    @property
    def result(self) -> str:
        """The last step's expression."""
        return self[-1].after if self else ""

    def _starts(self, n: int) -> bool:
        return n == 0 or self[n].before != self[n - 1].after

    def __str__(self) -> str:
        lines = [str(s) for s in self.title]
        width = len(str(len(self)))
        pad = " " * (width + 2)
        for n, s in enumerate(self):
            lines.append(f"{n + 1:>{width}}. {s.rule}" + (f": {s.note}" if s.note else ""))
            if self._starts(n):
                lines.append(pad + s.before)
            lines.append(pad + "= " + _rhs_text(s.after, s.lhs))
        return "\n".join(lines)

    def latex(self) -> str:
        """An ``aligned`` block: where an expression starts, it; then each step's result annotated with its rule."""
        rows = [" &= ".join(statement_latex(s)) for s in self.title]
        for n, s in enumerate(self):
            if self._starts(n):
                rows.append(f"{s.lhs_latex} &= {s.before_latex}" if s.lhs_latex else f"& {s.before_latex}")
            rows.append(rf"&= {s.after_latex} && \text{{({n + 1}) {latex_text(s.rule)}}}")
        return aligned(rows)

    def _repr_latex_(self) -> str:
        return f"$$\n{self.latex()}\n$$"

    def _repr_html_(self) -> str:
        from html import escape

        items = []
        for n, s in enumerate(self):
            start = f"<br><code>{escape(s.before)}</code>" if self._starts(n) else ""
            note = escape(": " + s.note) if s.note else ""
            after = escape(_rhs_text(s.after, s.lhs))
            items.append(f"<li><b>{escape(s.rule)}</b>{note}{start}<br><code>= {after}</code></li>")
        head = "".join(f"<code>{escape(str(s))}</code><br>" for s in self.title)
        return f"<div>{head}<ol>{''.join(items)}</ol></div>"


# -- pending derivatives ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    node: Node  # the expression to differentiate
    name: str  # by this tensor
    indices: tuple[str, ...]  # the placeholder's indices as made: the node's free indices (sorted), then ``new``
    new: tuple[str, ...]


class _Pending:
    """Placeholder tensors standing for derivatives not yet taken (``derivative``'s hook while a rule is taken)."""

    def __init__(self) -> None:
        self.records: dict[str, _Record] = {}
        self.made: dict[tuple[Node, str, tuple[str, ...]], str] = {}

    def __call__(self, node: Node, name: str, new: tuple[str, ...]) -> Node:
        key = (node, name, new)
        indices = (*sorted(node.free), *new)
        label = self.made.get(key)
        if label is None:
            label = self.made[key] = f"{_PENDING}{len(self.made) + 1}"
            self.records[label] = _Record(node, name, indices, new)
        return Tensor(label, indices)

    def parts(self, label: str, indices: tuple[str, ...]) -> tuple[Expr, str, tuple[str, ...]]:
        """The pending derivative ``label`` where it stands with ``indices``: what is differentiated (free indices
        renamed to those of ``indices``, in that order), the variable and its new indices."""
        r = self.records[label]
        k = len(r.indices) - len(r.new)
        inner = rename(r.node, dict(zip(r.indices[:k], indices[:k])))
        return Expr(separate(inner, frozenset(indices)), indices[:k]), r.name, indices[k:]


class _StepPrinter(_Printer):
    """Index notation with pending derivatives as ``∂(u)/∂x_k``."""

    def __init__(self, pending: _Pending) -> None:
        super().__init__()
        self.pending = pending

    def tensor(self, name: str, indices: tuple[str, ...]) -> str:
        if name not in self.pending.records:
            return super().tensor(name, indices)
        inner, var, new = self.pending.parts(name, indices)
        return f"∂({written(inner, _StepPrinter(self.pending))})/∂{var}{indices_text(new)}"


class _StepLatexPrinter(_LatexPrinter):
    """LaTeX with pending derivatives as ``∂/∂x_k (u)``."""

    def __init__(self, pending: _Pending) -> None:
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


class _Show:
    """How the expressions of one derivation print (as text and as LaTeX right-hand sides)."""

    def __init__(self, pending: _Pending, free: tuple[str, ...], name: str | None = None) -> None:
        self.pending, self.free, self.name = pending, free, name

    def text(self, node: Node) -> str:
        expr = Expr(node, self.free, self.name)
        if not any(t.name in self.pending.records for t in tensors(node)):
            return str(expr)  # exactly as ix.diff prints it
        return written(expr, _StepPrinter(self.pending))

    def latex(self, node: Node) -> str:
        return _StepLatexPrinter(self.pending).body(Expr(node, self.free))

    def lhs_latex(self) -> str:
        return _LatexPrinter().tensor(self.name, self.free) if self.name else ""

    def step(self, rule: str, before: Node, after: Node, note: str = "") -> Step:
        lhs = written(Expr(ZERO, self.free, self.name), _Printer()).removesuffix(" = 0") if self.name else ""
        text, latex = (self.text(before), self.text(after)), (self.latex(before), self.latex(after))
        return Step(rule, *text, note, *latex, lhs, self.lhs_latex())


def _first_pending(node: Node, pending: _Pending) -> Tensor | None:
    """The first pending derivative of ``node``, reading left to right."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor) and n.name in pending.records:
            return n
        stack.extend(reversed(children(n)))
    return None


def _replace(node: Node, match: Callable[[Node], Node | None]) -> Node | None:
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


def _fresh_copy(node: Node) -> Node:
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

# -- the rules of diff.py, named --------------------------------------------------------------------------------

_OPERATOR_RULES = {
    "softmax": "∂softmax_j(u) = s (∂u - Σ_j s ∂u), s = softmax_j(u)",
    "logsumexp": "∂logsumexp_j(u) = Σ_j softmax_j(u) ∂u",
    "mean": "∂mean_j(u) = mean_j(∂u)",
    "max": "∂max_j(u) = Σ_j ismax_j(u) ∂u",
    "min": "∂min_j(u) = Σ_j ismin_j(u) ∂u",
    "ismax": "ismax_j(u) is piecewise constant: 0",
    "ismin": "ismin_j(u) is piecewise constant: 0",
    "inv": "∂inv(A) = -inv(A) ∂A inv(A)",
    "det": "∂det(A) = det(A) Σ inv(A)ᵀ ∘ ∂A",
    "logdet": "∂logdet(A) = Σ inv(A)ᵀ ∘ ∂A",
}


def _rule(r: _Record, result: Node) -> tuple[str, str]:
    """The name of the rule of ``diff.py`` that differentiates ``r.node``, and its formula."""
    node = r.node
    var = r.name + indices_text(r.new)
    if isinstance(node, Tensor):
        return "δ rule", f"∂{node_text(node)}/∂{var} = {node_text(result)}"
    if isinstance(node, Mul):
        return "product rule", "∂(u v) = ∂u v + u ∂v"
    if isinstance(node, Add):
        return "sum rule", "∂(u + v) = ∂u + ∂v"
    if isinstance(node, Sum):
        j = "".join(node.indices)
        body = result.body if isinstance(result, Sum) else result
        kept = [node_text(f) for f in body.factors[1:]] if isinstance(body, Mul) else []
        return "Σ rule", f"∂(Σ_{j} u) = Σ_{j} ∂u" + (f"; {', '.join(kept)} = 1 keep the lengths" if kept else "")
    if isinstance(node, Func):
        from .functions import FUNCTIONS

        prime = node_text(FUNCTIONS[node.name].derivative(Tensor("u", ())))
        return "chain rule", f"∂{node.name}(u) = {node.name}'(u) ∂u, {node.name}'(u) = {prime}"
    if isinstance(node, Pow):
        e = node.exponent
        if e < 0:
            return "quotient rule", f"∂(u^{e}) = {e} u^{e - 1} ∂u" + (" (∂(1/u) = -∂u / u^2)" if e == -1 else "")
        return "power rule", f"∂(u^{e}) = {e} u^{e - 1} ∂u"
    assert isinstance(node, Op)
    from .identities import operator

    if operator(node.name, node.indices, node.arg) != node:
        return "operator identity", f"{node_text(node)} = {node_text(operator(node.name, node.indices, node.arg))}"
    return f"{node.name} rule", _OPERATOR_RULES[node.name]


class _Taker:
    """The tracer while one rule of ``diff.py`` is taken: derivatives it would recurse into stay pending."""

    def __init__(self, pending: _Pending) -> None:
        self.pending = pending

    def rule(self, name: str | None, before: Node | None, after: Node | None) -> None:
        pass

    def pass_done(self, before: Node, after: Node) -> None:
        pass


class _Simplifier:
    """The tracer while the simplifier runs: each reported rewrite found in the whole expression is one step;
    rewrites of intermediate forms (not in the expression) name the next step that is."""

    pending = None
    _MAX_NODES = 5000  # larger expressions are shown a pass at a time (finding each rewrite would be quadratic)

    def __init__(self, root: Node, show: _Show) -> None:
        self.root = self.current = root
        self.show = show
        self.names: list[str] = []
        self.steps: list[Step] = []
        self.per_rule = _size(root) <= self._MAX_NODES

    def rule(self, name: str | None, before: Node | None, after: Node | None) -> None:
        new = None
        if self.per_rule and before is not None and after is not None and before != after:
            new = _replace(self.current, lambda n: after if n == before else None)
        if new is None:
            if name:
                self.names.append(name)
            return
        note = f"{node_text(before)} → {node_text(after)}"  # type: ignore[arg-type]
        self.record(new, name, note if len(note) <= 160 else "")

    def record(self, new: Node, name: str | None, note: str = "") -> None:
        names = list(dict.fromkeys([*self.names, *([name] if name else [])]))
        self.names = []
        before, self.current = self.current, new
        step = self.show.step(", ".join(names) or "tidied (ones, zeros, nesting)", before, new, note)
        if step.before != step.after:
            self.steps.append(step)

    def pass_done(self, before: Node, after: Node) -> None:
        if before is not self.root:
            return  # a simplification of a part (not the whole expression)
        self.root = after
        if after != self.current:
            self.record(after, None)
        self.current = after


def _size(node: Node, limit: int = 100_000) -> int:
    seen: set[int] = set()
    stack = [node]
    while stack and len(seen) < limit:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            stack.extend(children(n))
    return len(seen)


# -- one derivative of an expression ----------------------------------------------------------------------------


def _derive(expr: Expr, spec: str) -> tuple[list[Step], Expr]:
    """The steps of ∂expr/∂spec and the derivative (``ix.diff(expr, spec)``)."""
    from .diff import diff

    name, new = _wrt(expr, spec)
    free = (*expr.free, *new)
    scope = frozenset(free)
    start = share(separate(expr.node, scope))
    pending = _Pending()
    show = _Show(pending, free)
    node = pending(start, name, new) if name in tensor_names(start) else ZERO
    out: list[Step] = [] if node != ZERO else [show.step("constant", Number(0), ZERO, f"{expr} does not use {name}")]
    while (p := _first_pending(node, pending)) is not None:
        r = pending.records[p.name]
        token = TRACE.set(_Taker(pending))
        try:
            result = RULES[type(r.node)](r.node, r.name, r.new)
        finally:
            TRACE.reset(token)
        after = _replace(node, _expanded(p.name, r.indices, result))
        assert after is not None
        rule, note = _rule(r, result)
        step = show.step(rule, node, after, note)
        if rule == "δ rule" and out and out[-1].rule == rule:  # consecutive δ rules: one step
            prev = out.pop()
            step = Step(rule, prev.before, step.after, f"{prev.note}, {note}", prev.before_latex, step.after_latex)
        out.append(step)
        node = after
    tracer = _Simplifier(_fresh_copy(node), show)
    token = TRACE.set(tracer)
    try:
        simplified = with_indices(tracer.root, scope)
    finally:
        TRACE.reset(token)
    out.extend(tracer.steps)
    result = diff(expr, spec)
    last = tracer.current if tracer.root is simplified else simplified
    if show.text(last) != str(result):  # canonical order, or names of summed indices as ix.diff gives them
        summed = all_indices(last) - scope != all_indices(result.node) - scope
        rule = ", ".join(dict.fromkeys([*tracer.names, "renaming of a summed index" if summed else "canonical order"]))
        out.append(Step(rule, show.text(last), str(result), "", show.latex(last), show.latex(result.node)))
    elif tracer.current is not simplified and show.text(tracer.current) != str(result):
        out.append(show.step(", ".join(tracer.names) or "canonical order", tracer.current, simplified))
    return out, result


def _expanded(label: str, indices: tuple[str, ...], result: Node) -> Callable[[Node], Node | None]:
    """For ``_replace``: the pending derivative ``label`` (made with ``indices``) is ``result``, wherever it stands."""
    return lambda n: rename(result, dict(zip(indices, n.indices))) if _is(n, label) else None


def _is(node: Node, label: str) -> bool:
    return isinstance(node, Tensor) and node.name == label


# -- reverse mode over a program ------------------------------------------------------------------------------

_SYMBOLS = {"sigmoid": "σ"}


class _Adjoints:
    """The tracer while ``ix.grad`` runs: one step per adjoint statement."""

    pending = None

    def __init__(self, loss: str) -> None:
        self.loss = loss
        self.names: list[str] = []
        self.steps: list[Step] = []
        self.pending_derivatives = _Pending()

    def rule(self, name: str | None, before: Node | None, after: Node | None) -> None:
        if name:
            self.names.append(name)

    def pass_done(self, before: Node, after: Node) -> None:
        pass

    def adjoint(self, name: str, chain: list[Expr], adjoints: dict[str, str], result: Expr) -> None:
        target = result.free
        parts: list[Node] = []
        for s in chain:  # Σ over the uses y of name: dy · ∂y/∂name (the loss: ∂L/∂name)
            new = fresh(all_indices(s.node) | set(s.free) | set(target), len(target))
            d = self.pending_derivatives(s.node, name, new)
            part = d if s.name not in adjoints else Mul((Tensor(adjoints[s.name], s.free), d))
            parts.append(rename(Sum(s.free, part) if s.free and s.name in adjoints else part, dict(zip(new, target))))
        before = parts[0] if len(parts) == 1 else Add(tuple(parts))
        show = _Show(self.pending_derivatives, target, result.name)
        rule, note = self._named(name, chain, result)
        simplified = ", ".join(dict.fromkeys(self.names))
        self.names = []
        self.steps.append(show.step(rule, before, result.node, note + (f"; then {simplified}" if simplified else "")))

    def _named(self, name: str, chain: list[Expr], result: Expr) -> tuple[str, str]:
        if not chain:
            return "unused", f"{self.loss} does not use {name}"
        if [s.name for s in chain] == [self.loss]:
            return "derivative of the loss", f"{result.name} = ∂{self.loss}/∂{name}"
        if len(chain) == 1:
            s = chain[0]
            node = s.node
            if isinstance(node, Func) and _is(node.arg, name) and set(node.arg.indices) == set(s.free):
                f = _SYMBOLS.get(node.name, node.name)
                note = f"the chain rule through the element-wise {node.name}: {result.name} = d{s.name} ∘ {f}'({name})"
                return f"d_{f} ∘ u", note
        uses = ", ".join(s.name for s in chain if s.name is not None)
        return "chain rule", f"{result.name} = Σ over the uses of {name} ({uses}) of dy ∂y/∂{name}"


def _program_steps(program: Program, wrt: Sequence[str], loss: str | None) -> Derivation:
    from .reverse import grad

    names = program.names
    tracer = _Adjoints(loss or (names[-1] if names else ""))
    token = TRACE.set(tracer)
    try:
        g = grad(program, loss, list(wrt))
    finally:
        TRACE.reset(token)
    return Derivation(tracer.steps, g.statements[: len(g.statements) - len(tracer.steps)])


# -- the public function ----------------------------------------------------------------------------------------


def steps(expr: Expr | Program, *wrt: str, loss: str | None = None) -> Derivation:
    """The derivation of ``ix.diff(expr, *wrt)`` one rule at a time (see ``Step``). For a program, reverse mode
    (``ix.grad(expr, loss, wrt)``) one adjoint statement at a time, each with the rule that produced it.

    >>> import indexdiff as ix
    >>> d = ix.steps(ix.parse("x_i A_ij x_j"), "x")
    >>> d[-1].after
    'A_ik x_i + A_kj x_j'
    >>> "δ contraction" in [s.rule for s in d]
    True
    """
    expect_specs(wrt, "steps")
    if not wrt:
        raise DiffError("no variable to differentiate by", hint="pass one, e.g. ix.steps(e, 'x')")
    if isinstance(expr, Program):
        return deep(_program_steps, expr, wrt, loss)
    if not isinstance(expr, Expr):
        raise ArgumentError(
            f"expected an expression from indexdiff.parse, got {type(expr).__name__}",
            hint="ix.steps(ix.parse('x_i A_ij x_j'), 'x')",
        )
    if loss is not None:
        raise ArgumentError("loss names a statement of a program", hint="pass a Program, or leave loss out")
    return deep(_expression_steps, expr, wrt)


def _expression_steps(expr: Expr, wrt: Sequence[str]) -> Derivation:
    out: list[Step] = []
    for spec in wrt:
        try:
            part, expr = _derive(expr, spec)
        except IndexDiffError as err:
            raise err.with_source(str(expr)) from None
        out.extend(part)
    return Derivation(out)


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

    node = _replace(parsed.node, resolve) or parsed.node
    variables = {t.name: len(t.indices) for t in tensors(node)}
    for _, var, new in table.values():
        variables.setdefault(var, len(new))
    return Expr(node, parsed.free, parsed.name, variables)


def _indices(text: str) -> tuple[str, ...]:
    if text.startswith("{"):
        return tuple(i for i in text.strip("{}").split(",") if i)
    return tuple(text)


def steps_text(parsed: Expr | Program, chains: Sequence[Sequence[str]], fmt: str, loss: str | None) -> str:
    """``indexdiff ... --steps``: each --wrt chain's derivation (a program's: its reverse mode, all at once) as
    numbered text, aligned LaTeX or JSON."""
    if not chains:
        raise ArgumentError("--steps shows a derivative: say which", hint="add --wrt, e.g. --wrt x")
    if fmt not in ("index", "latex", "json"):
        raise ArgumentError(f"--steps is shown as index notation, latex or json, not {fmt}", hint="drop --format")
    if isinstance(parsed, Program):
        if any(len(c) != 1 for c in chains):
            raise ArgumentError(
                "--steps of a program shows its reverse mode: one variable per --wrt",
                hint="write --wrt W1 --wrt b1 (a Hessian of a program has no steps)",
            )
        derivations = [steps(parsed, *(c[0] for c in chains), loss=loss)]
    else:
        derivations = [steps(parsed, *c) for c in chains]
    if fmt == "latex":
        return "\n\n".join(d.latex() for d in derivations)
    if fmt == "json":
        import json

        keys = ("rule", "before", "after", "note")
        return json.dumps([[{k: getattr(s, k) for k in keys} for s in d] for d in derivations], ensure_ascii=False)
    return "\n\n".join(str(d) for d in derivations)
