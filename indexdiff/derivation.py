"""Step-by-step derivations (``ix.steps``): each step is one named rule of ``diff.py`` or ``simplify.py``, shown
on the whole expression.

The rules are not written again here. A tracer (``trace.TRACE``) is set while a derivation runs: ``derivative``
then takes one rule and leaves each derivative it would recurse into pending, and the simplifier reports each
rewrite it makes (a δ contraction, like terms merged, ...), which is applied to the whole expression as one step.
A pending derivative prints as ``∂(u)/∂x_k``; where u has free indices besides the ones it is written with, it
prints as a statement, ``∂(f_ij = x_i A_ij x_j)/∂x_k`` (nothing in it is summed). ``parse_step`` reads such text
back, each pending derivative replaced by its value, so every step can be evaluated (tests/test_steps.py does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .diff import RULES, _wrt, with_indices
from .display import aligned, latex_text, statement_latex
from .errors import ArgumentError, DiffError, IndexDiffError, expect_specs
from .expr import ZERO, Add, Expr, Func, Mul, Node, Op, Pow, Program, Sum, Tensor, deep
from .names import all_indices, children, fresh, rename, separate, share, tensor_names, tensors
from .pending import (
    Pending,
    Record,
    StepLatexPrinter,
    StepPrinter,
    expanded,
    first_pending,
    fresh_copy,
    parse_step,
    replace,
)
from .printer import _LatexPrinter, _Printer, indices_text, node_text, written
from .trace import TRACE

__all__ = ["Step", "Derivation", "steps", "parse_step"]


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


class _Show:
    """How the expressions of one derivation print (as text and as LaTeX right-hand sides)."""

    def __init__(self, pending: Pending, free: tuple[str, ...], name: str | None = None) -> None:
        self.pending, self.free, self.name = pending, free, name
        self._texts: dict[int, tuple[Node, str]] = {}  # by id (the entry keeps its node alive): a step's "before"
        self._latex: dict[int, tuple[Node, str]] = {}  # is the step before's "after", printed once

    def text(self, node: Node) -> str:
        found = self._texts.get(id(node))
        if found is None:
            expr = Expr(node, self.free, self.name)
            if not any(t.name in self.pending.records for t in tensors(node)):
                text = str(expr)  # exactly as ix.diff prints it
            else:
                text = written(expr, StepPrinter(self.pending))
            found = self._texts[id(node)] = (node, text)
        return found[1]

    def latex(self, node: Node) -> str:
        found = self._latex.get(id(node))
        if found is None:
            found = self._latex[id(node)] = (node, StepLatexPrinter(self.pending).body(Expr(node, self.free)))
        return found[1]

    def lhs_latex(self) -> str:
        return _LatexPrinter().tensor(self.name, self.free) if self.name else ""

    def step(self, rule: str, before: Node, after: Node, note: str = "") -> Step:
        lhs = written(Expr(ZERO, self.free, self.name), _Printer()).removesuffix(" = 0") if self.name else ""
        text, latex = (self.text(before), self.text(after)), (self.latex(before), self.latex(after))
        return Step(rule, *text, note, *latex, lhs, self.lhs_latex())


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


def _rule(r: Record, result: Node) -> tuple[str, str]:
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
        plural = "s" * (len(node.indices) > 1)
        lengths = f"; {' '.join(kept)} is 1 and keeps the length{plural} of {', '.join(node.indices)}" if kept else ""
        return "Σ rule", f"∂(Σ_{j} u) = Σ_{j} ∂u{lengths}"
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

    def __init__(self, pending: Pending) -> None:
        self.pending = pending

    def rule(self, name: str | None, before: Node | None, after: Node | None) -> None:
        pass

    def pass_done(self, before: Node, after: Node) -> None:
        pass


class _Simplifier:
    """The tracer while the simplifier runs: each reported rewrite found in the whole expression is one step;
    rewrites of intermediate forms (not in the expression) name the step that shows their pass's result, and
    rewrites that only tidy (ones, zeros, nesting) join the next step."""

    pending = None

    def __init__(self, root: Node, show: _Show, per_rule: bool) -> None:
        self.root = self.current = self.base = root
        self.show = show
        self.names: list[str] = []
        self.steps: list[Step] = []
        self.per_rule = per_rule  # else a step per pass (a step per rewrite would be quadratic in the size)

    def rule(self, name: str | None, before: Node | None, after: Node | None) -> None:
        new = None
        if self.per_rule and before is not None and after is not None and before != after:
            new = replace(self.current, lambda n: after if n == before else None)
        if name:
            self.names.append(name)
        if new is not None:
            self.current = new
            note = f"{node_text(before)} → {node_text(after)}"  # type: ignore[arg-type]
            self.flush(note=note if name and len(note) <= 160 else "")

    def flush(self, force: bool = False, note: str = "") -> None:
        """A step from the last one shown to the expression as it is now, when a rule was named (or ``force``)."""
        if not (self.names or force):
            return
        rule = ", ".join(dict.fromkeys(self.names)) or "tidied (ones, zeros, nesting)"
        step = self.show.step(rule, self.base, self.current, note)
        if step.before != step.after:
            self.steps.append(step)
        self.base, self.names = self.current, []

    def pass_done(self, before: Node, after: Node) -> None:
        if before is not self.root:
            return  # a simplification of a part (not the whole expression)
        self.root = self.current = after
        self.flush()


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


_ROUND_NODES = 150


def _take(pending: Pending, label: str) -> Node:
    """One rule of ``diff.py`` on the pending derivative ``label``; the derivatives it needs stay pending."""
    r = pending.records[label]
    token = TRACE.set(_Taker(pending))
    try:
        return RULES[type(r.node)](r.node, r.name, r.new)
    finally:
        TRACE.reset(token)


def _all_pending(node: Node, pending: Pending) -> list[str]:
    """The pending derivatives of ``node``, each once, left to right."""
    out: dict[str, None] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor) and n.name in pending.records:
            out[n.name] = None
        stack.extend(reversed(children(n)))
    return list(out)


def _derive(expr: Expr, spec: str) -> tuple[list[Step], Expr]:
    """The steps of ∂expr/∂spec and the derivative (``ix.diff(expr, spec)``)."""
    from .diff import diff

    name, new = _wrt(expr, spec)
    free = (*expr.free, *new)
    scope = frozenset(free)
    start = share(separate(expr.node, scope))
    pending = Pending()
    show = _Show(pending, free)
    node = pending(start, name, new)
    out: list[Step] = []
    if name not in tensor_names(start):  # the variable was there once (x - x): the derivative is 0
        out.append(show.step("constant", node, ZERO, f"∂c/∂{name} = 0: the expression does not use {name}"))
        node = ZERO
    rounds = _size(start) > _ROUND_NODES  # a large expression: every pending derivative of a level in one step
    while (p := first_pending(node, pending)) is not None:
        labels = _all_pending(node, pending) if rounds else [p.name]
        results = {label: _take(pending, label) for label in labels}
        after = replace(node, expanded(pending, results))
        assert after is not None
        named = [_rule(pending.records[label], result) for label, result in results.items()]
        if len(named) == 1:
            rule, note = named[0]
        else:
            rule, note = ", ".join(f"{r} ×{n}" for r, n in Counter(r for r, _ in named).items()), ""
        step = show.step(rule, node, after, note)
        if rule == "δ rule" and out and out[-1].rule == rule:  # consecutive δ rules: one step
            prev = out.pop()
            step = Step(rule, prev.before, step.after, f"{prev.note}, {note}", prev.before_latex, step.after_latex)
        out.append(step)
        node = after
    tracer = _Simplifier(fresh_copy(node), show, per_rule=not rounds)
    token = TRACE.set(tracer)
    try:
        tracer.current = with_indices(tracer.root, scope)
    finally:
        TRACE.reset(token)
    tracer.flush(force=True)
    out.extend(tracer.steps)
    result = diff(expr, spec)
    if show.text(tracer.current) != str(result):  # as ix.diff has it: canonical order, summed names, symmetry
        symmetric = sorted(getattr(expr, "symmetric", frozenset()) & tensor_names(expr.node))
        renamed = all_indices(tracer.current) - scope != all_indices(result.node) - scope
        rule = "renaming of a summed index" if renamed else "canonical order"
        if name in symmetric:
            rule = f"{name} is symmetric: the derivative by it is (G + Gᵀ)/2"
        elif symmetric:
            rule = f"{', '.join(symmetric)} symmetric (S_ij = S_ji), like terms merged"
        before = show.text(tracer.current)
        out.append(Step(rule, before, str(result), "", show.latex(tracer.current), show.latex(result.node)))
    return out, result


# -- reverse mode over a program ------------------------------------------------------------------------------

_SYMBOLS = {"sigmoid": "σ"}


class _Adjoints:
    """The tracer while ``ix.grad`` runs: one step per adjoint statement."""

    pending = None

    def __init__(self, loss: str) -> None:
        self.loss = loss
        self.names: list[str] = []
        self.steps: list[Step] = []
        self.pending_derivatives = Pending()

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
            if (
                isinstance(node, Func)
                and isinstance(node.arg, Tensor)
                and node.arg.name == name
                and set(node.arg.indices) == set(s.free)
            ):
                f = _SYMBOLS.get(node.name, node.name)
                note = f"the chain rule through the element-wise {node.name}: {result.name} = d{s.name} ∘ {f}'({name})"
                return f"d_{f} ∘ u", note
        uses = ", ".join(s.name for s in chain if s.name is not None)
        return "chain rule", f"{result.name} = Σ over the uses of {name} ({uses}) of dy ∂y/∂{name}"


def _program_steps(program: Program, wrt: Sequence[str], loss: str | None) -> Derivation:
    from .reverse import grad

    tracer = _Adjoints(loss or (program.names[-1] if program.names else ""))
    token = TRACE.set(tracer)
    try:
        g = grad(program, loss, list(wrt))
    finally:
        TRACE.reset(token)
    forward = g.statements[: program.names.index(tracer.loss) + 1]
    shown = {s.lhs.split("_")[0]: s for s in tracer.steps}
    out: list[Step] = []
    for s in g.statements[len(forward) :]:
        step = shown.get(s.name or "")
        text, (lhs, rhs) = str(s), statement_latex(s)
        lhs_text = text.split(" = ")[0]
        if step is None:  # a variable the loss does not use: a zero gradient
            out.append(Step("unused", text, text, f"{tracer.loss} does not use it", rhs, rhs, lhs_text, lhs))
            continue
        out.append(step)
        if step.after != text:  # the gradient's indices as the caller named them
            note = f"{step.lhs} → {lhs_text}"
            out.append(Step("indices named", step.after, text, note, step.after_latex, rhs, lhs_text, lhs))
    return Derivation(out, forward)


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
