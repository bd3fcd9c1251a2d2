"""Expressions as numpy code: one ``np.einsum`` call per product, its letters chosen for that call alone, every
length read from an array's shape, or, where no array has it, from an explicit size parameter ``n_<index>``.

The code is planned as the evaluator computes (``plan_product``): deltas join indices instead of becoming identity
matrices, except where a delta joins two output indices (a diagonal: one ``np.eye`` in that call). In a generated
module a product is written as ix.compile runs it: element-wise products with ``*``, a matrix product with ``@``
(``(X.T @ (y * s))``, ``((X * d[:, None]).T @ X)``), einsum for the rest (``EinsumCode.by_hand``).

Operators are numpy expressions of their argument's code, stable as the evaluator: softmax and logsumexp shifted
by the maximum (``lambda`` binds the argument, so it is computed once), ``np.mean``/``np.max``/``np.min`` with
``axis=``, ``np.linalg.inv``, ``np.linalg.det`` and ``np.linalg.slogdet``. An inverse summed over one of its
indices with one vector or matrix alone is ``np.linalg.solve``: one factorization, no inverse formed
(``x_i inv(A_ij) x_j`` is ``np.einsum('i,i->', x, np.linalg.solve(A, x))``). A line of einsum code stands alone:
its logdet of a matrix with a negative determinant is nan (as ``np.log`` of a negative number), and inv of a
singular matrix raises numpy's LinAlgError. Generated modules (``helpers=True``) call ``_inv``, ``_solve`` and
``_logdet`` instead, defined in the module (``helper_lines``), which raise a ValueError that names the operator.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from .byhand import plan_by_hand
from .errors import IndexDiffError
from .evaluate import as_exponent, as_float, plan_product, unique_summed
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, bound_indices
from .names import UnionFind, all_indices, children, tensors
from .operators import MATRIX_FUNCTIONS
from .sharing import structure_keys

__all__ = [
    "NUMPY_CODE",
    "OPERATOR_CODE",
    "EinsumCode",
    "Temporaries",
    "einsum_text",
    "helper_lines",
    "number_code",
    "size_parameter",
]

Labels = tuple[Any, ...]

# Element-wise functions as numpy expressions of their argument's code (the evaluator's conventions: a stable
# sigmoid and softplus, step(0) = step(nan) = 0). sigmoid is e / (1 + e), e = exp(min(a, 80)): exact in both tails
# in float32 and float64 and as fast as 1 / (1 + exp(-a)); softplus is max(a, 0) + log1p(exp(-|a|)).
NUMPY_CODE = {
    "exp": "np.exp({})",
    "log": "np.log({})",
    "sin": "np.sin({})",
    "cos": "np.cos({})",
    "tan": "np.tan({})",
    "tanh": "np.tanh({})",
    "sigmoid": "(lambda e: e / (1 + e))(np.exp(np.minimum({}, 80.0)))",
    "relu": "np.maximum({}, 0)",
    "step": "(lambda a: np.greater(a, 0).astype(np.result_type(a, 1.0)))({})",  # in a's float dtype
    "softplus": "(lambda a: np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a))))({})",
    "sqrt": "np.sqrt({})",
    "abs": "np.abs({})",
    "sign": "np.sign({})",
}

# Operators as numpy expressions of their argument's code {a} and the axes they work over {axis}; a lambda binds
# the argument once. Softmax and logsumexp subtract m, the maximum over the axes made finite (module docstring).
_M = "np.nan_to_num(np.max(a, axis={axis}, keepdims=True, initial=-np.inf))"
OPERATOR_CODE = {
    "softmax": "(lambda a: (lambda e: e / np.sum(e, axis={axis}, keepdims=True))(np.exp(a - " + _M + ")))({a})",
    "logsumexp": "(lambda a: (lambda m: np.log(np.sum(np.exp(a - m), axis={axis})) + np.squeeze(m, axis={axis}))("
    + _M
    + "))({a})",
    "mean": "np.mean({a}, axis={axis})",
    "max": "np.max({a}, axis={axis})",
    "min": "np.min({a}, axis={axis})",
    "ismax": "(lambda a: (lambda h: h / np.sum(h, axis={axis}, keepdims=True))("
    "(a == np.max(a, axis={axis}, keepdims=True)).astype(a.dtype)))({a})",
    "ismin": "(lambda a: (lambda h: h / np.sum(h, axis={axis}, keepdims=True))("
    "(a == np.min(a, axis={axis}, keepdims=True)).astype(a.dtype)))({a})",
    "inv": "np.linalg.inv({a})",
    "solve": "np.linalg.solve({a}, {b})",  # inv(M) contracted with b
    "det": "np.linalg.det({a})",
    "logdet": "(lambda s: np.log(s.sign) + s.logabsdet)(np.linalg.slogdet({a}))",
}
#: What a generated module calls instead (``helpers=True``), and the functions it defines for them.
_HELPER_CODE = {"inv": "_inv({a})", "solve": "_solve({a}, {b})", "logdet": "_logdet({a})"}
_HELPERS = {
    "inv": (
        "def _inv(m):",
        '    """The inverse of the matrix m (numpy.linalg.inv); a ValueError when m is singular."""',
        "    try:",
        "        return np.linalg.inv(m)",
        "    except np.linalg.LinAlgError:",
        '        raise ValueError("inv of a singular matrix: it has no inverse at these values") from None',
    ),
    "solve": (
        "def _solve(m, b):",
        '    """inv(m) times b, by one factorization (numpy.linalg.solve); a ValueError when m is singular."""',
        "    try:",
        "        return np.linalg.solve(m, b)",
        "    except np.linalg.LinAlgError:",
        '        raise ValueError("inv of a singular matrix: it has no inverse at these values") from None',
    ),
    "logdet": (
        "def _logdet(m):",
        '    """log(det(m)) without overflow (numpy.linalg.slogdet); a ValueError unless det(m) > 0."""',
        "    sign, value = np.linalg.slogdet(m)",
        "    if not sign > 0:",
        '        what = "zero (a singular matrix)" if sign == 0 else "negative"',
        '        raise ValueError(f"logdet of a matrix whose determinant is {what}: logdet needs det > 0")',
        "    return value",
    ),
}


def _transposed(code: str) -> str:
    return f"{code}.T" if code.isidentifier() else f"({code}).T"


def helper_lines(codes: list[str]) -> list[str]:
    """The definitions of the helpers (``_inv``, ``_logdet``) that ``codes`` (a module's code) call."""
    used = [name for name in sorted(_HELPERS) if any(re.search(rf"(?<![\w.])_{name}\(", c) for c in codes)]
    lines = [line for name in used for line in ("", *_HELPERS[name], "")]
    return [*lines, ""] if lines else []


#: The letters np.einsum accepts, in the order a call takes them after the indices' own names.
LETTERS = string.ascii_lowercase + string.ascii_uppercase


def number_code(value: Fraction) -> str:
    """A number as a Python float literal (the float the evaluator uses; ``np.inf`` beyond the float range)."""
    f = as_float(value)
    if math.isinf(f):
        return "np.inf" if f > 0 else "-np.inf"
    return repr(f)


def size_parameter(index: str) -> str:
    """The parameter that gives the length of ``index`` where no array does: ``n_b``."""
    name = index.split("#")[0]
    return "n_" + "".join(c if ("_" + c).isidentifier() else f"u{ord(c):04x}" for c in name)


def _letters(labels: list[Labels]) -> dict[Any, str] | None:
    """A letter for each label of one einsum call, an index keeping its own name where it is a free letter."""
    keys = list(dict.fromkeys(k for own in labels for k in own))
    if len(keys) > len(LETTERS):
        return None
    out: dict[Any, str] = {}
    for k in keys:
        name = (k[1] if isinstance(k, tuple) else k).split("#")[0]
        if len(name) == 1 and name in LETTERS and name not in out.values():
            out[k] = name
    free = iter(c for c in LETTERS if c not in out.values())
    for k in keys:
        if k not in out:
            out[k] = next(free)
    return out


Found = tuple[str, Labels]


class Temporaries:
    """Subexpressions computed once into named locals (``t0 = np.einsum(...)``) for every ``EinsumCode`` given this
    object. Nodes are shared by their ``sharing.structure_keys`` (as ix.compile shares them): equal up to the names
    of their free indices, a node with two free indices also when it is another transposed (``x_i - m_i`` and
    ``x_j - m_j`` are one temporary; ``inv(C_ij)``, ``inv(C_pq)`` and ``inv(C_ji)`` one inversion).

    Two passes over the same expressions: counting (``counted=None``) memoizes every key and counts each request,
    so that a node inside a repeated node counts once; emitting (``Temporaries(taken, counting)``) computes
    each key requested more than once into a temporary the first time (``lines``) and writes the others inline."""

    def __init__(self, taken: frozenset[str] | set[str] = frozenset(), counted: Temporaries | None = None) -> None:
        self.shared = None if counted is None else {key for key, n in counted.uses.items() if n > 1}
        self.known: dict[Node, list[Any]] = {} if counted is None else counted.known  # each node's keys
        self.uses: Counter[Any] = Counter()
        self.memo: dict[Any, Found] = {}
        self.lines: list[str] = []  # the temporaries' assignments not yet taken (``take``)
        self.taken = set(taken)  # names a temporary must not take
        self.count = 0

    def keys(self, node: Node) -> list[Any]:
        """The keys ``node`` is shared by: none for a tensor, number or delta (nothing to compute) and for a node with
        an index no tensor in it carries (its length, and so its value, depends on where it stands)."""
        if isinstance(node, (Tensor, Number, Delta)):
            return []
        if node not in self.known:
            carried = {i for t in tensors(node) for i in t.indices}
            if not all_indices(node) <= carried:
                self.known[node] = []
            elif isinstance(node, Op) and node.name in MATRIX_FUNCTIONS:  # det(C_ji) is det(C_ij)
                self.known[node] = [(node.name, key) for key in structure_keys(node.arg)]
            else:
                self.known[node] = structure_keys(node)
        return self.known[node]

    def holds(self, keys: list[Any]) -> bool:
        """Whether the emitting pass computes one of ``keys`` into a temporary."""
        return self.shared is not None and any(key in self.shared for key in keys)

    def take(self) -> list[str]:
        """The temporaries' assignments made since the last call."""
        lines, self.lines = self.lines, []
        return lines

    def get(self, keys: list[Any], make: Callable[[], Found], count: bool = True) -> tuple[str, Labels, bool]:
        """The code and axes of the node with ``keys`` (made by ``make`` where not computed yet), and whether it is
        the node of the second key (the transpose of the first)."""
        for flipped, key in enumerate(keys):
            if key in self.memo:
                self.uses[key] += count
                return (*self.memo[key], bool(flipped))
        key = keys[0]
        if self.shared is None:  # counting
            self.uses[key] += count
            self.memo[key] = make()
            return (*self.memo[key], False)
        code, labels = make()
        if key not in self.shared:
            return code, labels, False
        while f"t{self.count}" in self.taken:
            self.count += 1
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {code}")
        self.memo[key] = (name, labels)
        return name, labels, False


class EinsumCode:
    """The numpy code of one expression; ``names`` maps tensor names to the Python names of their arrays.

    ``params`` lists the size parameters the code uses (lengths no array gives), in order of first use. With
    ``temps``, subexpressions several codes share are computed once (``Temporaries``); ``dtype`` is the code of the
    dtype the arrays the code makes take (``np.ones``, ``np.eye``), numpy's default without it.
    """

    def __init__(
        self,
        expr: Expr,
        names: dict[str, str] | None = None,
        helpers: bool = False,
        temps: Temporaries | None = None,
        dtype: str | None = None,
    ) -> None:
        self.expr = expr
        self.names = names or {}
        self.helpers = helpers  # in a generated module: call its _inv and _logdet (helper_lines)
        self.temps = temps
        self.dtype = dtype
        self.node = unique_summed(expr.node, expr.free)
        self.params: dict[str, str] = {}
        classes = UnionFind()
        stack = [self.node]
        while stack:
            n = stack.pop()
            if isinstance(n, Delta) and len(n.indices) == 2:
                classes.union(*n.indices)
            stack.extend(children(n))
        self.find = classes.find
        # Each class of indices (joined by deltas) reads its length off one array that carries it.
        self.source: dict[str, str] = {}
        for t in tensors(self.node):
            for axis, i in enumerate(t.indices):
                self.source.setdefault(self.find(i), f"{self.py(t.name)}.shape[{axis}]")
        for i, (name, axis) in expr.origins.items():
            self.source.setdefault(self.find(i), f"{self.py(name)}.shape[{axis}]")

    def py(self, name: str) -> str:
        return self.names.get(name, name)

    def size(self, index: str) -> str:
        """Code for the length of ``index``."""
        found = self.source.get(self.find(index))
        if found is not None:
            return found
        param = size_parameter(index)
        self.params.setdefault(param, index.split("#")[0])
        return param

    def text(self) -> str:
        """The whole expression, axes in ``expr.free`` order."""
        code, labels = self.code(self.node)
        free = tuple(self.expr.free)
        aligned = self.aligned(code, labels, free)
        if any(i not in labels for i in free):
            return f"np.broadcast_to({aligned}, ({', '.join(self.size(i) for i in free)},))"
        return aligned

    def code(self, node: Node, count: bool = True) -> tuple[str, Labels]:
        """Code for ``node`` and its axes: its free indices, sorted (a temporary's name where ``temps`` has it)."""
        keys = self.temps.keys(node) if self.temps is not None else []
        if not keys:
            return self._code(node)
        assert self.temps is not None
        code, _, flipped = self.temps.get(keys, lambda: self._code(node), count)
        labels = tuple(sorted(node.free))  # the shared value's axes, position by position (structure_keys)
        return (_transposed(code) if flipped and len(labels) == 2 else code), labels

    def _code(self, node: Node) -> tuple[str, Labels]:
        if isinstance(node, Number):
            return number_code(node.value), ()
        if isinstance(node, (Tensor, Delta, Mul)):
            return self.product(node, frozenset())
        if isinstance(node, Sum):
            if isinstance(node.body, (Tensor, Delta, Mul)):
                return self.product(node.body, frozenset(node.indices))
            inner, labels = self.code(node.body)
            axes = tuple(k for k, i in enumerate(labels) if i in node.indices)
            return f"np.sum({inner}, axis={axes})", tuple(i for i in labels if i not in node.indices)
        if isinstance(node, Func):
            inner, labels = self.code(node.arg)
            # a custom function (ix.function) is called by its name, which generated modules bind
            return NUMPY_CODE.get(node.name, node.name + "({})").format(inner), labels
        if isinstance(node, Pow):
            inner, labels = self.code(node.base)
            # np.power, not **: 0.0 ** -1 raises in Python, while numpy gives inf as the evaluator does.
            return f"np.power({inner}, {as_exponent(node.exponent)!r})", labels
        if isinstance(node, Add):
            labels = tuple(sorted(node.free))
            parts = [self.aligned(*self.code(t), labels) for t in node.terms]
            return "(" + " + ".join(parts) + ")", labels
        if isinstance(node, Op):
            return self.operator(node)
        raise AssertionError(node)

    def operator(self, node: Op) -> tuple[str, Labels]:
        """An operator over axes of its argument's code (broadcast first along an index the argument lacks)."""
        inner, labels = self.code(node.arg)
        missing = [i for i in node.indices if i not in labels]
        if missing:
            full = tuple(sorted((*labels, *missing)))
            shape = "".join(f"{self.size(i)}, " for i in full)
            inner, labels = f"np.broadcast_to({self.aligned(inner, labels, full)}, ({shape.rstrip()}))", full
        axes = tuple(labels.index(i) for i in node.indices)
        template = _HELPER_CODE.get(node.name) if self.helpers else None
        code = (template or OPERATOR_CODE[node.name]).format(a=inner, axis=axes)
        return code, tuple(i for i in labels if i not in bound_indices(node))

    def aligned(self, code: str, labels: Labels, target: Labels) -> str:
        """``code`` (axes ``labels``) transposed to ``target`` order, with new axes where it lacks an index."""
        if labels == target or not labels:
            return code
        own = tuple(i for i in target if i in labels)
        if labels != own:
            code = self.call([labels], [code], own)
        if len(own) == len(target):
            return code
        return f"({code})[{', '.join(':' if i in labels else 'None' for i in target)}]"

    def product(self, node: Node, summed: frozenset[str]) -> tuple[str, Labels]:
        """One einsum call for Σ_summed of ``node``'s factors."""
        plan = plan_product(node, summed, self.size)
        operands: list[Node | None] = [*plan.operands, *(None for _ in plan.ones)]
        args = [self.py(f.name) if isinstance(f, Tensor) else self.code(f)[0] for f in plan.operands]
        args += [f"np.ones({n}{', ' + self.dtype if self.dtype else ''})" for n in plan.ones]
        terms: list[Labels] = list(plan.terms)
        self.solves(operands, args, terms, set(plan.reps))
        out: list[Any] = []
        for o, r in zip(plan.out, plan.classes):
            if r not in out:
                out.append(r)
            else:  # a delta between two output indices: this axis is the diagonal of an identity
                terms.append((r, ("diagonal", o)))
                args.append(f"np.eye({self.size(r)}{', dtype=' + self.dtype if self.dtype else ''})")
                out.append(("diagonal", o))
        if not args:
            return number_code(plan.coef), ()
        call = self.by_hand(terms, args, tuple(out)) if self.helpers else self.call(terms, args, tuple(out))
        return (call if plan.coef == 1 else f"{number_code(plan.coef)} * {call}"), plan.out

    def by_hand(self, terms: list[Labels], args: list[str], out: Labels) -> str:
        """A product in a generated module as ix.compile runs it (byhand.plan_by_hand): element-wise products
        with ``*``, broadcasts, one matrix product ``a @ b``, einsum for the rest."""
        plan = plan_by_hand(terms, out)
        if plan is None:
            return self.call(terms, args, out)
        wrapped = [a if a.isidentifier() else f"({a})" for a in args]
        codes = [" * ".join(wrapped[k] for k in ks) for _, ks in plan.groups]
        codes = [f"({c})" if len(ks) > 1 else c for c, (_, ks) in zip(codes, plan.groups)]
        axes = [own for own, _ in plan.groups]
        later: list[tuple[str, Labels]] = []
        for s, t in plan.moves:
            code, own = codes.pop(s), axes.pop(s)
            if t is None:  # y_i X_ij w_j as (X @ w) * y
                later.append((code, own))
                continue
            t = t if t < s else t - 1  # Σ_i X_ik X_il d_i as (X d)ᵀ X
            codes[t] = f"({codes[t]} * {self.aligned(code, own, axes[t])})"
        form = plan.final
        if form is None:
            code = self.call(axes, codes, out)
        else:
            left, right = (codes[0], codes[1]) if form.left == 0 else (codes[1], codes[0])
            left = _transposed(left) if form.transpose_left else left
            right = _transposed(right) if form.transpose_right else right
            code = f"({left} @ {right})"
        for arg, own in later:
            code = f"({code} * {self.aligned(arg, own, out)})"
        return code

    def solves(self, operands: list[Node | None], args: list[str], terms: list[Labels], out: set[Any]) -> None:
        """Rewrites, in place, each inverse contracted over one index with one vector or matrix alone:
        Σ_c inv(M)_rc g_c... is ``solve(M, g)`` (and Σ_r inv(M)_rc g_r... is ``solve(M.T, g)``), one
        factorization instead of an inversion and a product. An inverse computed once for several uses (a
        temporary) is contracted with that vector or matrix first instead, as cheap as the solve after it."""
        k = 0
        while k < len(operands):
            f = operands[k]
            found = self._partner(k, terms, out) if isinstance(f, Op) and f.name == "inv" else None
            if found is None:
                k += 1
                continue
            assert isinstance(f, Op)
            m, x = found
            keep, other = terms[k][1 - terms[k].index(x)], [i for i in terms[m] if i != x]
            if self.temps is not None and self.temps.holds(self.temps.keys(f)):
                solved = self.call([terms[k], terms[m]], [args[k], args[m]], (keep, *other))
            else:
                solved = self._solve(f, x, terms[k], terms[m], args[m])
            for j in sorted((k, m), reverse=True):
                del operands[j], args[j], terms[j]
            operands.append(None)
            args.append(solved)
            terms.append((keep, *other))
            k = 0  # the lists shifted: look again from the start (each rewrite removes an inverse)

    def _solve(self, f: Op, x: Any, own: Labels, theirs: Labels, rhs: str) -> str:
        """``solve(M, g)`` for the inverse ``f`` (axes ``own``) summed over ``x`` with ``rhs`` (axes ``theirs``)."""
        if isinstance(f.arg, Tensor) and len(set(f.arg.indices)) == 2:  # the array itself, or its .T
            rows = sorted(f.arg.free)[1 - own.index(x)]
            matrix = self.py(f.arg.name) + ("" if f.arg.indices[0] == rows else ".T")
        else:
            matrix = self.code(f.arg, count=False)[0]  # counted as a part of the inverse
            matrix = matrix if x == own[1] else _transposed(matrix)
        rhs = rhs if theirs[0] == x else _transposed(rhs)
        return (_HELPER_CODE if self.helpers else OPERATOR_CODE)["solve"].format(a=matrix, b=rhs)

    @staticmethod
    def _partner(k: int, terms: list[Labels], out: set[Any]) -> tuple[int, Any] | None:
        """(m, x): the one operand m that the inverse k is summed with over its index x, when m is a vector or a
        matrix carrying x once and not the inverse's other index; None when there is none."""
        own = terms[k]
        if len(own) != 2 or own[0] == own[1]:
            return None
        for x in (own[1], own[0]):
            users = [m for m, t in enumerate(terms) if x in t and m != k]
            if x in out or len(users) != 1:
                continue
            t = terms[users[0]]
            if len(t) <= 2 and len(set(t)) == len(t) and own[1 - own.index(x)] not in t:
                return users[0], x
        return None

    def call(self, terms: list[Labels], args: list[str], out: Labels) -> str:
        """``np.einsum`` of ``args`` (axes ``terms``) to ``out``; pairwise when one call would need > 52 letters."""
        if len(args) == 1 and tuple(terms[0]) == tuple(out):
            return args[0]
        whole = self._einsum(terms, args, out)
        if whole is not None:
            return whole
        # More indices than np.einsum has letters: contract left to right, keeping what later operands need.
        acc, acc_terms = args[0], tuple(terms[0])
        for k in range(1, len(terms)):
            later = set(out).union(*(set(t) for t in terms[k + 1 :]))
            keep = tuple(dict.fromkeys(i for i in (*acc_terms, *terms[k]) if i in later))
            acc, acc_terms = self._written([acc_terms, terms[k]], [acc, args[k]], keep), keep
        return acc if acc_terms == tuple(out) else self._written([acc_terms], [acc], out)

    def _written(self, terms: list[Labels], args: list[str], out: Labels) -> str:
        code = self._einsum(terms, args, out)
        if code is None:
            raise IndexDiffError(
                f"a product needs more than {len(LETTERS)} indices at once, more than numpy's einsum can write",
                str(self.expr),
                hint="split the expression into statements with fewer indices each",
            )
        return code

    def _einsum(self, terms: list[Labels], args: list[str], out: Labels) -> str | None:
        """One ``np.einsum`` call; in a generated module, three operands or more take numpy's contraction order
        (``optimize=True``: pairwise, through BLAS) instead of one loop over every index at once."""
        letters = _letters([*terms, out])
        if letters is None:
            return None
        spec = ",".join("".join(letters[k] for k in own) for own in terms) + "->" + "".join(letters[k] for k in out)
        optimize = ", optimize=True" if self.helpers and len(args) > 2 else ""
        return f"np.einsum('{spec}', {', '.join(args)}{optimize})"


def einsum_text(expr: Expr, names: dict[str, str] | None = None) -> str:
    """``expr`` as one numpy expression built from ``np.einsum`` calls, axes in ``expr.free`` order.

    ``names`` maps tensor names to the Python names the arrays have (default: the same). A length no array gives
    is read from a size parameter ``n_<index>`` the surrounding code defines.

    >>> import indexdiff as ix
    >>> print(einsum_text(ix.diff(ix.parse("x_i A_ij x_j"), "x")))
    (np.einsum('ik,i->k', A, x) + np.einsum('kj,j->k', A, x))
    """
    return EinsumCode(expr, names).text()
