"""Matrix-notation trees as idiomatic NumPy: ``@`` for products, ``.T``, ``np.outer``, broadcasting for
``diag(v)`` in a product (``X.T * d @ X``), ``.sum(axis=...)`` for the ones vector, ``np.linalg.solve`` for an
inverse times something, ``np.trace``, ``np.diag``; one ``np.einsum`` expression (``einsumcode``) per term with no
matrix form. Vectors are 1-D arrays. ``numpy_module`` writes functions a person can paste: the value and each
derivative, taking the arrays (and ``n_<index>`` for a length no array gives) and returning arrays laid out as
``expr.free``.
"""

from __future__ import annotations

from .einsumcode import NUMPY_CODE, EinsumCode, number_code
from .evaluate import as_exponent, unique_summed
from .expr import Expr, Program
from .matrixform import MatrixForm, to_matrix
from .matrixtree import (
    Call,
    Eye,
    Fn,
    Had,
    Index,
    M,
    Name,
    Num,
    Ones,
    Plus,
    Power,
    Prod,
    T,
    children,
    negated,
    negative,
    prod,
    shape,
)

__all__ = ["NumpyCode", "numpy_module", "program_module"]

_ADD, _MUL, _UNARY, _POW, _ATOM = range(5)

#: Functions the generated code defines once and calls by name (the evaluator's stable formulas); the others are
#: a numpy call (``NUMPY_CODE``) or, for a user's function, its own name.
HELPERS = {
    "sigmoid": ("def sigmoid(a):", "    e = np.exp(np.minimum(a, 80.0))", "    return e / (1 + e)"),
    "softplus": ("def softplus(a):", "    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))"),
    "step": ("def step(a):", "    return np.greater(a, 0).astype(np.result_type(a, 1.0))"),
    "softmax": (
        "def softmax(a):",
        '    """Each row\'s softmax (of a vector: the vector\'s)."""',
        "    e = np.exp(a - np.max(a, axis=-1, keepdims=True))",
        "    return e / np.sum(e, axis=-1, keepdims=True)",
    ),
    "logsumexp": (
        "def logsumexp(a):",
        '    """Each row\'s log-sum-exp (of a vector: a number)."""',
        "    m = np.max(a, axis=-1, keepdims=True)",
        "    return np.log(np.sum(np.exp(a - m), axis=-1)) + np.squeeze(m, axis=-1)",
    ),
    "logdet": (
        "def logdet(m):",
        "    sign, value = np.linalg.slogdet(m)",
        "    return value if sign > 0 else np.nan",
    ),
}
_SCALAR = (False, False)


class NumpyCode:
    """NumPy code for the matrix form of ``expr`` (``names``: tensor name -> Python name)."""

    def __init__(self, expr: Expr, names: dict[str, str], taken: set[str] | None = None) -> None:
        self.expr = Expr(unique_summed(expr.node, expr.free), expr.free, expr.name, expr.variables, expr.origins)
        self.names = names
        self.sizes = EinsumCode(self.expr, names)  # lengths: read off an array's shape, else n_<index>
        self.params = self.sizes.params
        self.helpers: set[str] = set()
        self.form: MatrixForm = to_matrix(self.expr)  # type: ignore[assignment]

        # A subexpression the form uses twice is computed once, into a local: lines holds ``t0 = ...``.
        self.shared = _repeated(self.form.tree)
        self.temps: dict[M, str] = {}
        self.lines: list[str] = []
        self.taken = taken if taken is not None else set(names.values())

    def text(self) -> str:
        """The code of the value (after ``lines``, the locals it uses), shaped as ``expr.free``."""
        code = self.code(self.form.tree)[0]
        if self.expr.free and shape(self.form.tree) == _SCALAR:  # a constant (0) stands for every entry
            sizes = ", ".join(self.sizes.size(i) for i in self.expr.free)
            return f"np.full(({sizes},), {code}, dtype=float)"
        return code

    def at(self, e: M, level: int) -> str:
        code, own = self.code(e)
        return f"({code})" if own < level else code

    def code(self, e: M) -> tuple[str, int]:
        if e not in self.shared:
            return self._code(e)
        if e not in self.temps:
            text = self._code(e)[0]
            name = next(f"t{k}" for k in range(len(self.taken) + 1) if f"t{k}" not in self.taken)
            self.taken.add(name)
            self.lines.append(f"{name} = {text}")
            self.temps[e] = name
        return self.temps[e], _ATOM

    def _code(self, e: M) -> tuple[str, int]:
        if isinstance(e, Name):
            return self.names.get(e.name, e.name), _ATOM
        if isinstance(e, Num):
            text = str(e.value.numerator) if e.value.denominator == 1 and abs(e.value) < 2**53 else number_code(e.value)
            return text, (_UNARY if text.startswith("-") else _ATOM)
        if isinstance(e, Eye):
            return f"np.eye({self.sizes.size(e.index)})", _ATOM
        if isinstance(e, Ones):
            return f"np.ones({self.sizes.size(e.index)})", _ATOM
        if isinstance(e, T):
            if shape(e.arg) != (True, True):
                return self.code(e.arg)  # a 1-D vector is its own transpose
            return self.at(e.arg, _ATOM) + ".T", _ATOM
        if isinstance(e, Prod):
            return self.product(e)
        if isinstance(e, Had):
            num = [f for f in e.factors if not (isinstance(f, Power) and f.exponent < 0)]
            den = [_reciprocal(f) for f in e.factors if isinstance(f, Power) and f.exponent < 0]
            text = " * ".join(self.at(f, _UNARY) for f in num) if num else "1"
            for d in den:
                text += " / " + self.at(d, _UNARY)
            return text, _MUL
        if isinstance(e, Power):
            exponent = as_exponent(e.exponent)
            if shape(e.base) == _SCALAR:  # np.power: a Python float 0.0 ** -1 would raise (and 2 ** -1 in numpy)
                base = number_code(e.base.value) if isinstance(e.base, Num) else self.code(e.base)[0]
                return f"np.power({base}, {exponent!r})", _ATOM
            return f"{self.at(e.base, _ATOM)} ** {exponent!r}", _POW
        if isinstance(e, Plus):
            full = [t for t in e.terms if _spread(t) is None]
            if full and shape(full[0]) == (True, True):  # 1 cᵀ and c 1ᵀ beside a matrix: numpy broadcasts c
                e = Plus(tuple(_spread(t) or t for t in e.terms))
            text = self.at(e.terms[0], _ADD)
            for t in e.terms[1:]:
                minus = negative(t)
                text += (" - " if minus else " + ") + self.at(negated(t) if minus else t, _MUL)
            return text, _ADD
        if isinstance(e, Fn):
            if e.name in HELPERS:
                self.helpers.add(e.name)
                return f"{e.name}({self.code(e.arg)[0]})", _ATOM
            return NUMPY_CODE.get(e.name, e.name + "({})").format(self.code(e.arg)[0]), _ATOM
        if isinstance(e, Call):
            return self.call(e), _ATOM
        if isinstance(e, _Rows):
            return self.at(e.arg, _ATOM) + "[:, None]", _ATOM
        assert isinstance(e, Index)
        term = EinsumCode(e.expr, self.names)  # type: ignore[arg-type]
        text = term.text()
        for param, index in term.params.items():
            self.params.setdefault(param, index)
        return text, _ATOM

    def call(self, e: Call) -> str:
        arg = self.code(e.arg)[0]
        simple = {"diag": "np.diag", "tr": "np.trace", "sum": "np.sum", "det": "np.linalg.det", "inv": "np.linalg.inv"}
        if e.name in simple:
            return f"{simple[e.name]}({arg})"
        self.helpers.add(e.name)  # logdet; softmax and logsumexp row by row
        return f"{e.name}({arg})"

    def product(self, e: Prod) -> tuple[str, int]:
        scalars = [f for f in e.factors if shape(f) == _SCALAR]
        arrays = [f for f in e.factors if shape(f) != _SCALAR]
        dens = [_reciprocal(f) for f in scalars if isinstance(f, Power) and f.exponent < 0]
        nums = [f for f in scalars if not (isinstance(f, Power) and f.exponent < 0)]
        text, level = self.chain(arrays) if arrays else ("", _ATOM)
        for s in reversed(nums):
            if isinstance(s, Num) and s.value == -1 and text:
                text, level = "-" + (f"({text})" if level < _POW else text), _UNARY
            elif isinstance(s, Num) and s.value == 1 and text:
                continue
            else:
                text = self.at(s, _UNARY) + (" * " + (f"({text})" if level < _MUL else text) if text else "")
                level = _MUL if text != self.at(s, _UNARY) else _UNARY
        if not text:
            text, level = "1.0", _ATOM
        for d in dens:
            if not arrays:
                text, level = f"np.divide({text}, {self.code(d)[0]})", _ATOM
            else:
                text, level = f"{text if level >= _MUL else f'({text})'} / {self.at(d, _UNARY)}", _MUL
        return text, level

    def chain(self, arrays: list[M]) -> tuple[str, int]:
        """A matrix product of non-scalar factors, left to right."""
        text, level, acc = "", _ATOM, _SCALAR
        k = 0
        while k < len(arrays):
            f, s = arrays[k], shape(arrays[k])
            rest = arrays[k + 1 :]
            if isinstance(f, Call) and f.name == "inv" and rest:  # A⁻¹ B: solve, no inverse formed
                right = prod(rest)
                solve = f"np.linalg.solve({self.code(f.arg)[0]}, {self.code(right)[0]})"
                text = f"{_wrap(text, level, _MUL)} @ {solve}" if text else solve
                return text, (_MUL if acc != _SCALAR else _ATOM)
            if acc == _SCALAR and text:  # a row times a column, then more: a scalar multiple
                text, level = f"{_wrap(text, level, _MUL)} * {self.at(f, _UNARY)}", _MUL
                acc, k = s, k + 1
                continue
            if acc == _SCALAR:
                if _is_diag(f) and rest:  # diag(v) M: scale M's rows
                    v, g = self.at(f.arg, _ATOM), rest[0]  # type: ignore[attr-defined]
                    g_shape = shape(g)
                    text = (
                        f"{v}[:, None] * {self.at(g, _UNARY)}"
                        if g_shape == (True, True)
                        else f"{v} * {self.at(g, _UNARY)}"
                    )
                    level, acc, k = _MUL, g_shape, k + 2
                    continue
                if isinstance(f, T) and shape(f) == (True, True) and rest and isinstance(rest[0], Ones):  # Xᵀ 1
                    text, level, acc, k = f"{self.at(f.arg, _ATOM)}.sum(axis=0)", _ATOM, (True, False), k + 2
                    continue
                if isinstance(f, T) and isinstance(f.arg, Ones) and rest:  # 1ᵀ M: column sums
                    g_shape = shape(rest[0])
                    text = (
                        f"{self.at(rest[0], _ATOM)}.sum(axis=0)"
                        if g_shape == (True, True)
                        else f"np.sum({self.code(rest[0])[0]})"
                    )
                    level, acc, k = _ATOM, (False, g_shape[1]), k + 2
                    continue
                text, level = self.code(f)
                acc, k = s, k + 1
                continue
            if not acc[1] and not s[0]:  # a column times a row: the outer product
                text, level = f"np.outer({text}, {self.code(f)[0]})", _ATOM
            elif isinstance(f, Ones):
                text, level = (f"{_wrap(text, level, _ATOM)}.sum(axis=1)" if acc[0] else f"np.sum({text})"), _ATOM
            elif _is_diag(f):
                text, level = f"{_wrap(text, level, _MUL)} * {self.at(f.arg, _UNARY)}", _MUL  # type: ignore[attr-defined]
            else:
                text, level = f"{_wrap(text, level, _MUL)} @ {self.at(f, _UNARY)}", _MUL
            acc, k = (acc[0], s[1]), k + 1
        return text, level


class _Rows(M):
    """Internal: a vector to broadcast along rows (``c[:, None]``)."""

    def __init__(self, arg: M) -> None:
        self.arg = arg


def _spread(t: M) -> M | None:
    """``1 cᵀ`` as ``c`` (numpy broadcasts a 1-D array along rows), ``c 1ᵀ`` as ``c[:, None]``; else None."""
    if isinstance(t, Prod) and len(t.factors) == 2:
        a, b = t.factors
        if isinstance(a, Ones) and isinstance(b, T) and shape(b.arg) == (True, False):
            return b.arg
        if isinstance(b, T) and isinstance(b.arg, Ones) and shape(a) == (True, False):
            return _Rows(a)
    return None


def _repeated(tree: M) -> set[M]:
    """The function calls and products (of two arrays or more) that occur more than once in ``tree``."""
    counts: dict[M, int] = {}
    stack = [tree]
    while stack:
        e = stack.pop()
        worth = isinstance(e, Fn) or (isinstance(e, Call) and e.name != "diag")
        worth = worth or (isinstance(e, (Prod, Had)) and sum(shape(f) != _SCALAR for f in children(e)) >= 2)
        if worth:
            counts[e] = counts.get(e, 0) + 1
            if counts[e] > 1:
                continue  # its parts are computed with it, once
        stack.extend(children(e))
    return {e for e, n in counts.items() if n > 1}


def _wrap(text: str, level: int, needed: int) -> str:
    return f"({text})" if level < needed else text


def _is_diag(e: M) -> bool:
    return isinstance(e, Call) and e.name == "diag" and shape(e.arg) == (True, False)


def _reciprocal(e: M) -> M:
    assert isinstance(e, Power)
    return e.base if e.exponent == -1 else Power(e.base, -e.exponent)


def _module(functions: list[str], helpers: set[str]) -> str:
    lines = ["import numpy as np", ""]
    for name in sorted(helpers):
        lines += ["", *HELPERS[name], ""]
    return "\n".join([*lines, *functions]).rstrip() + "\n"


def _comment(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''")


def numpy_module(exprs: list[tuple[str, Expr]], names: dict[str, str]) -> str:
    """Python source: ``import numpy as np``, the helpers used, and one function per ``(function name, expr)``
    taking every tensor of ``names`` (and the size parameters its code needs) and returning the matrix form's
    value, laid out as ``expr.free``."""
    functions: list[str] = []
    helpers: set[str] = set()
    for fname, e in exprs:
        code = NumpyCode(e, names)
        body = code.text()
        helpers |= code.helpers
        signature = ", ".join([*names.values(), *(["*", *code.params] if code.params else [])])
        doc = f"{_comment(str(e))}  =  {_comment(code.form.text)}"
        local = [f"    {line}" for line in code.lines]
        functions += ["", f"def {fname}({signature}):", f'    """{doc}"""', *local, f"    return {body}", ""]
    return _module(functions, helpers)


def program_module(programs: list[Program]) -> str:
    """Python source: one function per program, its statements in order as NumPy assignments (each with its
    matrix form as a comment), returning the program's outputs; it takes the program's inputs."""
    from .codegen import python_names

    functions: list[str] = []
    helpers: set[str] = set()
    taken: set[str] = set()
    for p in programs:
        names = python_names({**p.inputs, **{s.name or "f": 0 for s in p.statements}})
        body, params = [], {}
        taken = set(names.values())
        for s in p.statements:
            code = NumpyCode(s, names, taken)
            text = code.text()
            params.update(code.params)
            helpers |= code.helpers
            body += [f"    # {s.name} = {code.form.text}", *(f"    {line}" for line in code.lines)]
            body.append(f"    {names[s.name or 'f']} = {text}")
        fname = "gradients" if len(p.outputs) > 1 else names[p.statements[-1].name or "f"]
        while fname in taken:
            fname += "_"
        taken.add(fname)
        signature = ", ".join([*(names[n] for n in p.inputs), *(["*", *params] if params else [])])
        outputs = ", ".join(names[o] for o in p.outputs)
        functions += ["", f"def {fname}({signature}):", *body, f"    return {outputs}", ""]
    return _module(functions, helpers)
