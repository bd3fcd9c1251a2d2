"""The summation rules (README, "Summation rules"): syntax -> explicit nodes, an IndexRuleError per broken rule.

Rule 1, Einstein per product: an index in two factors of one product (or twice in one tensor) is summed there,
unless bound.  Rule 2: terms of a sum share their free indices, except scalar terms and terms lacking a bound
index (both broadcast).  Rule 3: functions and powers are element-wise.  Rule 4: a left-hand side and sum_i(...)
bind their indices; free indices of a statement's right side missing on its left are summed.  Rule 5: a bare
expression's output indices are its free indices in sorted order.  Rule 6: an unbound index three times in one
product is an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from .errors import IndexDiffError, IndexRuleError, ParseError
from .expr import BINDING, Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Program, Sum, Tensor, negate, product
from .identities import recognize
from .names import origin, separate
from .printer import indices_text
from .syntax import (
    NUMBER_RULE,
    SAdd,
    SCall,
    SDiv,
    SGroup,
    SMul,
    SNeg,
    SNumber,
    SOp,
    SPow,
    SStatement,
    SSum,
    STensor,
    Syn,
    constant,
    foldable,
    representable,
)

__all__ = ["build", "make_sum", "output_order"]


def output_order(free: frozenset[str]) -> tuple[str, ...]:
    """Rule 5: a bare expression's axes are its free indices in sorted order (numpy.einsum's implicit mode)."""
    return tuple(sorted(free))


def make_sum(indices: frozenset[str] | set[str], body: Node) -> Node:
    """``Σ_indices body``, merged into ``body`` when it is itself a sum."""
    if not indices:
        return body
    if isinstance(body, Sum):
        return Sum(tuple(sorted(set(indices) | set(body.indices))), body.body)
    return Sum(tuple(sorted(indices)), body)


def _coefficient(node: Node) -> Number | None:
    """The number leading a product, if any."""
    if isinstance(node, Mul) and isinstance(node.factors[0], Number):
        return node.factors[0]
    return None


def _zero(node: Node) -> bool:
    """Whether ``node`` is zero by the parser's own folding: 0, a product with such a factor (0 x, y (0 x)^2),
    a sum_j of one, a positive power of one."""
    if isinstance(node, Sum):
        return _zero(node.body)
    if isinstance(node, Pow):
        return node.exponent > 0 and _zero(node.base)
    if isinstance(node, Mul):
        return any(_zero(f) for f in node.factors)
    return isinstance(node, Number) and node.value == 0


def _fmt(indices: frozenset[str] | set[str]) -> str:
    return "{" + ", ".join(sorted(indices)) + "}"


@dataclass
class _Context:
    text: str
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (rank, position of first use)
    used: dict[str, int] = field(default_factory=dict)  # names used in the current statement -> position

    def use(self, t: STensor) -> None:
        rank = len(t.indices)
        seen = self.ranks.get(t.name)
        if seen is None:
            self.ranks[t.name] = (rank, t.start)
        elif seen[0] != rank:
            line = self.text.count("\n", 0, seen[1]) + 1
            col = seen[1] - (self.text.rfind("\n", 0, seen[1]) + 1) + 1
            where = f"line {line}, column {col}" if "\n" in self.text.strip() else f"column {col}"
            raise IndexRuleError(
                f"'{t.name}' is used with {_count(rank)} here but with {_count(seen[0])} at {where}",
                self.text,
                t.start,
                t.end,
                hint="a tensor has the same number of indices everywhere; use another name for a different tensor",
            )
        self.used.setdefault(t.name, t.start)


def _count(rank: int) -> str:
    return f"{rank} index" if rank == 1 else f"{rank} indices"


class _Resolver:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx

    def error(
        self, reason: str, at: Syn, hint: str, end: int | None = None, kind: type[IndexDiffError] = IndexRuleError
    ) -> IndexDiffError:
        return kind(reason, self.ctx.text, at.start, end if end is not None else at.end, hint=hint)

    def resolve(self, s: Syn, bound: frozenset[str]) -> Node:
        """The node a whole sub-expression means, given the indices bound around it."""
        if isinstance(s, SNumber):
            return Number(s.value)
        if isinstance(s, (STensor, SMul)):
            return self.product(s, bound)
        if isinstance(s, SGroup):
            return self.resolve(s.inner, bound)
        if isinstance(s, SCall):
            return Func(s.name, self.resolve(s.arg, bound))
        if isinstance(s, SPow):
            base = self.resolve(s.base, bound)
            if s.exponent < 0 and (_zero(base) or constant(s.base) == 0):
                raise self.error(
                    "zero to a negative power: a division by zero",
                    s.base,
                    hint="the base of a negative power must not be zero; write a nonzero base",
                )
            return Pow(base, s.exponent)
        if isinstance(s, SNeg):
            return negate(self.resolve(s.arg, bound))
        if isinstance(s, SDiv):
            return self.quotient(s, bound)
        if isinstance(s, SAdd):
            return self.sum_of_terms(s, bound)
        if isinstance(s, SSum):
            return self.explicit_sum(s, bound)
        if isinstance(s, SOp):
            return self.operator(s, bound) if s.indices else self.matrix_function(s, bound)
        raise AssertionError(f"unexpected syntax {s!r}")

    def factor(self, s: Syn, bound: frozenset[str]) -> tuple[Node, Counter[str]]:
        """A factor of a product and how often it mentions each index (a tensor counts repeats)."""
        if isinstance(s, STensor):
            self.ctx.use(s) if not s.delta else None
            node: Node = Delta(s.indices) if s.delta else Tensor(s.name, s.indices)
            if isinstance(node, Delta) and len(set(s.indices)) == 1:
                node = Delta((s.indices[0],))
            return node, Counter(s.indices)
        node = self.resolve(s, bound)
        return node, Counter(node.free)

    def product(self, s: STensor | SMul, bound: frozenset[str]) -> Node:
        """Rule 1 and rule 6 on one product."""
        if isinstance(s, STensor) and not s.delta and len(set(s.indices)) == len(s.indices):
            self.ctx.use(s)
            return Tensor(s.name, s.indices)  # the common case: nothing to sum
        parts = s.factors if isinstance(s, SMul) else (s,)
        nodes, counts, coef = [], Counter[str](), Fraction(1)
        for part in parts:
            node, count = self.factor(part, bound)
            nodes.append(node)
            counts.update(count)
            number = node if isinstance(node, Number) else _coefficient(node)
            if number is not None:
                coef *= number.value
                if not foldable(coef):  # fail fast on a long run of huge numbers
                    raise self.error(
                        "the numbers here multiply to a number out of range",
                        s,
                        hint=f"{NUMBER_RULE.capitalize()}; rescale the expression",
                        kind=ParseError,
                    )
        summed = set()
        for index, n in counts.items():
            if index in bound:
                continue
            if n >= 3:
                raise self.error(
                    f"index '{index}' occurs {n} times in one product",
                    s,
                    hint=f"an index is summed when it occurs twice; for an element-wise product over {index}, bind "
                    f"it with a left-hand side (f{indices_text((index,))} = ...) or write "
                    f"sum{indices_text((index,))}(...) around the product",
                )
            if n == 2:
                summed.add(index)
        return make_sum(summed, self.folded(product(nodes), s))

    def folded(self, node: Node, s: Syn) -> Node:
        """``node`` (whose numbers the parser multiplied) when its number is representable, else an error at s.

        A number times one sum goes inside it, ``2 (x_j y_j) -> Σ_j 2 x_j y_j``, as negation does (``-(x_j y_j)``
        is ``Σ_j -x_j y_j``): one form, whichever way the text writes it, so printing parses back the same."""
        number = node if isinstance(node, Number) else _coefficient(node)
        if number is not None and not representable(number.value):
            raise self.error(
                "the numbers here multiply to a number out of range",
                s,
                hint=f"{NUMBER_RULE.capitalize()}; rescale the expression",
                kind=ParseError,
            )
        if isinstance(node, Mul) and len(node.factors) == 2 and number is not None:
            inner = node.factors[1]
            if isinstance(inner, Sum):
                return Sum(inner.indices, product([number, inner.body]))
        return node

    def quotient(self, s: SDiv, bound: frozenset[str]) -> Node:
        if constant(s.den) == 0:
            raise self.error("division by zero", s.den, hint="divide by a nonzero number")
        num, den = self.resolve(s.num, bound), self.resolve(s.den, bound)
        if _zero(den):
            raise self.error("division by zero: the divisor is zero", s.den, hint="divide by a nonzero expression")
        if isinstance(num, Number) and isinstance(den, Number):
            return self.folded(Number(num.value / den.value), s)
        inverse = [
            Number(1 / f.value) if isinstance(f, Number) else Pow(f, Fraction(-1))
            for f in (den.factors if isinstance(den, Mul) else (den,))
        ]
        if isinstance(num, Number) and num.value == 1:
            return self.folded(product(inverse), s)
        return self.folded(product([num, *inverse]), s)

    def sum_of_terms(self, s: SAdd, bound: frozenset[str]) -> Node:
        """Rule 2: the terms' free indices agree, up to scalars and bound indices (both broadcast)."""
        terms = [self.resolve(t, bound) for t in s.terms]
        union = frozenset().union(*(t.free for t in terms))
        for t, syn in reversed(list(zip(terms, s.terms))):
            missing = union - t.free - bound
            if t.free and missing:
                k = next(k for k, o in enumerate(terms) if o.free & missing)
                other, text = s.terms[k], self.ctx.text
                lhs = (
                    f"f_{{{','.join(sorted(union))}}} = ..."
                    if any(len(i) > 1 for i in union)
                    else (f"f_{''.join(sorted(union))} = {text[s.start : s.end]}")
                )
                raise self.error(
                    f"the terms of a sum have different free indices: '{text[syn.start : syn.end]}' has "
                    f"{_fmt(t.free)} but '{text[other.start : other.end]}' has {_fmt(terms[k].free)}",
                    syn,
                    hint="give every term the same free indices, or add a left-hand side naming the result's "
                    f"indices (terms lacking one of them are then broadcast): {lhs}",
                )
        signed = [t if sign > 0 else negate(t) for t, sign in zip(terms, s.signs)]
        return Add(tuple(signed))

    def explicit_sum(self, s: SSum, bound: frozenset[str]) -> Node:
        for i in s.indices:
            if i in bound:
                raise self.error(
                    f"sum{indices_text((i,))}(...) sums an index that is already bound",
                    s,
                    hint=f"'{i}' is bound by a left-hand side or an enclosing sum; use another letter",
                    end=self.ctx.text.index("(", s.start),
                )
        body = self.resolve(s.body, bound | frozenset(s.indices))
        for i in s.indices:
            if i not in body.free:
                raise self.error(
                    f"sum{indices_text((i,))}(...): '{i}' is not a free index of the body",
                    s,
                    hint=f"the body's free indices are {_fmt(body.free)}; sum over one of those",
                    end=self.ctx.text.index("(", s.start),
                )
        return make_sum(set(s.indices), body)

    def _head(self, s: SOp) -> int:
        return self.ctx.text.index("(", s.start)

    def operator(self, s: SOp, bound: frozenset[str]) -> Node:
        """``softmax_j(...)``, ``mean_j(...)``...: j is bound inside the argument (no Einstein sum over it there).
        A reduction binds j as sum_j does; softmax and the indicators keep it free."""
        own = frozenset(s.indices)
        if s.name in BINDING:
            for i, at in zip(s.indices, s.index_pos):
                if i in bound:
                    raise IndexRuleError(
                        f"{s.name}{indices_text((i,))}(...) binds an index that is already bound",
                        self.ctx.text,
                        at,
                        at + len(i),
                        hint=f"'{i}' is bound by a left-hand side or an enclosing sum or operator; use another letter",
                    )
        arg = self.resolve(s.arg, bound | own)
        for i in s.indices:
            if i not in arg.free:
                raise self.error(
                    f"{s.name}{indices_text((i,))}(...): '{i}' is not a free index of the argument",
                    s,
                    hint=f"the argument's free indices are {_fmt(arg.free)}; take the {s.name} over one of those",
                    end=self._head(s),
                )
        return Op(s.name, tuple(sorted(own)), arg)

    def matrix_function(self, s: SOp, bound: frozenset[str]) -> Node:
        """``inv(M)``, ``det(M)``, ``logdet(M)``: M has exactly two free indices; det and logdet bind them."""
        arg = self.resolve(s.arg, bound)
        if len(arg.free) != 2:
            text = self.ctx.text[s.arg.start : s.arg.end]
            has = f"the free indices {_fmt(arg.free)}" if arg.free else "no free index"
            raise self.error(
                f"{s.name}(...) needs a matrix, an argument with exactly two free indices; '{text}' has {has}",
                s.arg,
                hint=f"write {s.name}(A_ij), {s.name}(X_ni X_nj + c δ_ij), ...: the two free indices are the "
                "matrix's rows and columns (in sorted order)",
            )
        if s.name == "inv":
            return Op("inv", (), arg)
        taken = sorted(arg.free & bound)
        if taken:
            raise self.error(
                f"{s.name}(...) binds its argument's indices, but '{taken[0]}' is already bound",
                s,
                hint=f"'{taken[0]}' is bound by a left-hand side or an enclosing sum or operator; use another letter "
                f"inside {s.name}(...)",
                end=self._head(s),
            )
        return Op(s.name, tuple(sorted(arg.free)), arg)


def _expr(ctx: _Context, s: Syn) -> Expr:
    ctx.used = {}
    resolver = _Resolver(ctx)
    if isinstance(s, SStatement):
        bound = frozenset(s.indices)
        body = resolver.resolve(s.body, bound)
        zero = isinstance(body, Number) and body.value == 0  # f_kl = 0: the zero tensor
        for index, at in zip(s.indices, s.index_pos):
            if index not in body.free and not zero:
                raise IndexRuleError(
                    f"index '{index}' of the left-hand side does not occur on the right",
                    ctx.text,
                    at,
                    at + len(index),
                    hint=f"every output index must be a free index of the right-hand side ({_fmt(body.free)}); "
                    "remove it from the left or use it on the right",
                )
        if s.name in ctx.used:
            at = ctx.used[s.name]
            raise IndexRuleError(
                f"'{s.name}' is defined in terms of itself",
                ctx.text,
                at,
                at + len(s.name),
                hint="give the result a new name",
            )
        node = make_sum(body.free - bound, body)
        free, name = s.indices, s.name
    else:
        node = resolver.resolve(s, frozenset())
        free, name = output_order(node.free), None
    # A summed index that repeats a name visible around it takes the name the printed form gives it (in
    # (δ_ii) / u_i the trace's i prints as j): one name per index, so dims name the indices as they print.
    node = separate(recognize(node), frozenset(free))
    variables = {n: ctx.ranks[n][0] for n in ctx.used}
    origins = {}
    for index in free:
        found = origin(node, index)
        if found is not None:
            origins[index] = found
    return Expr(node, free, name, variables, origins)


def build(text: str, lines: list[Syn]) -> Expr | Program:
    """Give the parsed lines their meaning: one Expr, or a Program of statements."""
    ctx = _Context(text)
    if len(lines) == 1:
        return _expr(ctx, lines[0])
    defined: dict[str, int] = {}
    statements = []
    for s in lines:
        if not isinstance(s, SStatement):
            raise ParseError(
                "a program's lines must all be statements",
                text,
                s.start,
                s.end,
                hint="name the result: L = ... (several lines or ';' make a program)",
            )
        if s.name in defined:
            raise IndexRuleError(
                f"'{s.name}' is defined twice",
                text,
                s.start,
                s.start + len(s.name),
                hint="each statement defines a new name; rename one of them",
            )
        if s.name in ctx.ranks and s.name not in defined:
            raise IndexRuleError(
                f"'{s.name}' is used before its definition",
                text,
                ctx.ranks[s.name][1],
                ctx.ranks[s.name][1] + len(s.name),
                hint="define it on an earlier line, or use another name for the input",
            )
        expr = _expr(ctx, s)
        defined[s.name] = len(s.indices)
        ctx.ranks.setdefault(s.name, (len(s.indices), s.start))
        if ctx.ranks[s.name][0] != len(s.indices):
            raise IndexRuleError(
                f"'{s.name}' is defined with {_count(len(s.indices))} but used with {_count(ctx.ranks[s.name][0])}",
                text,
                s.start,
                s.start + len(s.name),
                hint="use it with the indices it is defined with",
            )
        statements.append(expr)
    return Program(tuple(statements))
