"""Expressions as code: numpy einsum calls, one per product term."""

from __future__ import annotations

import builtins
import keyword

import opt_einsum

from .errors import IndexDiffError
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Pow, Program, Sum, Tensor
from .names import children
from .printer import number_text

__all__ = ["codegen", "einsum_text", "latex_text", "python_text", "python_names"]

# Element-wise functions as numpy expressions of their argument's code.
NUMPY_CODE = {
    "exp": "np.exp({})",
    "log": "np.log({})",
    "sin": "np.sin({})",
    "cos": "np.cos({})",
    "tan": "np.tan({})",
    "tanh": "np.tanh({})",
    "sigmoid": "np.exp(-np.logaddexp(0, -({})))",
    "relu": "np.maximum({}, 0)",
    "step": "np.heaviside({}, 0)",
    "softplus": "np.logaddexp(0, {})",
    "sqrt": "np.sqrt({})",
    "abs": "np.abs({})",
    "sign": "np.sign({})",
}


class _Einsum:
    """Builds the numpy code for a node; index names map to einsum letters, sizes come from origins."""

    def __init__(self, expr: Expr, names: dict[str, str] | None = None) -> None:
        self.expr = expr
        self.names = names or {}
        self.letters: dict[str, str] = {}
        taken = set()
        stack = [expr.node]
        names: list[str] = list(expr.free)
        while stack:
            n = stack.pop()
            if isinstance(n, (Tensor, Delta, Sum)):
                names.extend(n.indices)
            stack.extend(children(n))
        for i in dict.fromkeys(names):
            if len(i) == 1 and i.isascii() and i.isalpha() and i not in taken:
                self.letters[i] = i
                taken.add(i)
        k = 0
        for i in dict.fromkeys(names):
            if i not in self.letters:
                while opt_einsum.get_symbol(k) in taken:
                    k += 1
                self.letters[i] = opt_einsum.get_symbol(k)
                taken.add(self.letters[i])

    def size_code(self, index: str, node: Node) -> str:
        """Code for the length of ``index`` in the product ``node``: a tensor of that product, else its origin."""
        for t in _tensors(node):
            if index in t.indices:
                return f"{self.names.get(t.name, t.name)}.shape[{t.indices.index(index)}]"
        name, axis = self.expr.origins.get(index, (None, 0))
        if name is not None:
            return f"{self.names.get(name, name)}.shape[{axis}]"
        raise IndexDiffError(
            f"no tensor gives the length of index '{index}'",
            str(self.expr),
            hint="the expression's code needs an array that carries every index",
        )

    def code(self, node: Node) -> tuple[str, tuple[str, ...]]:
        if isinstance(node, Number):
            return number_text(node.value).replace("/", " / "), ()
        if isinstance(node, (Tensor, Delta, Mul)):
            return self.product(node, ())
        if isinstance(node, Sum):
            if isinstance(node.body, (Tensor, Delta, Mul)):
                return self.product(node.body, node.indices)
            inner, labels = self.code(node.body)
            axes = tuple(k for k, i in enumerate(labels) if i in node.indices)
            return f"np.sum({inner}, axis={axes})", tuple(i for i in labels if i not in node.indices)
        if isinstance(node, Func):
            inner, labels = self.code(node.arg)
            return NUMPY_CODE[node.name].format(inner), labels
        if isinstance(node, Pow):
            inner, labels = self.code(node.base)
            e = node.exponent
            exponent = str(e.numerator) if e.denominator == 1 else f"({e.numerator} / {e.denominator})"
            return f"({inner}) ** {exponent}", labels
        if isinstance(node, Add):
            labels = tuple(sorted(node.free))
            parts = [self.aligned(*self.code(t), labels) for t in node.terms]
            return "(" + " + ".join(parts) + ")", labels
        raise AssertionError(node)

    def aligned(self, code: str, labels: tuple[str, ...], target: tuple[str, ...]) -> str:
        if labels == target:
            return code
        if not labels:
            return code
        own = [i for i in target if i in labels]
        if list(labels) != own:
            code = f"np.einsum('{self.word(labels)}->{self.word(tuple(own))}', {code})"
        if len(own) == len(target):
            return code
        index = ", ".join(":" if i in labels else "None" for i in target)
        return f"{code}[{index}]"

    def word(self, labels: tuple[str, ...]) -> str:
        return "".join(self.letters[i] for i in labels)

    def product(self, node: Node, summed: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        factors = node.factors if isinstance(node, Mul) else (node,)
        coef = ""
        specs, args = [], []
        for f in factors:
            if isinstance(f, Number):
                coef = number_text(f.value).replace("/", " / ") + " * "
            elif isinstance(f, Tensor):
                specs.append(self.word(f.indices))
                args.append(self.names.get(f.name, f.name))
            elif isinstance(f, Delta):
                n = self.size_code(f.indices[0], node)
                specs.append(self.word(f.indices))
                args.append(f"np.eye({n})" if len(f.indices) == 2 else f"np.ones({n})")
            else:
                inner, labels = self.code(f)
                specs.append(self.word(labels))
                args.append(inner)
        out = tuple(sorted(node.free - set(summed)))
        if not args:
            return coef.rstrip(" *") or "1", ()
        if len(args) == 1 and specs[0] == self.word(out):
            return coef + args[0], out
        return f"{coef}np.einsum('{','.join(specs)}->{self.word(out)}', {', '.join(args)})", out


def _tensors(node: Node) -> list[Tensor]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            out.append(n)
        stack.extend(children(n))
    return out


def einsum_text(expr: Expr, names: dict[str, str] | None = None) -> str:
    """``expr`` as one numpy expression built from ``np.einsum`` calls, axes in ``expr.free`` order.

    ``names`` maps tensor names to the Python names the arrays have (default: the same).

    >>> import indexdiff as ix
    >>> print(einsum_text(ix.diff(ix.parse("x_i A_ij x_j"), "x")))
    (np.einsum('ik,i->k', A, x) + np.einsum('kj,j->k', A, x))
    """
    builder = _Einsum(expr, names)
    code, labels = builder.code(expr.node)
    missing = [i for i in expr.free if i not in labels]
    aligned = builder.aligned(code, labels, tuple(expr.free))
    if missing:
        shape = ", ".join(builder.size_code(i, expr.node) for i in expr.free)
        return f"np.broadcast_to({aligned}, ({shape},))"
    return aligned


#: Names the generated module uses itself (and Python's builtins): a tensor with such a name gets a trailing _.
_PY_TAKEN = frozenset({"np", "sys", "evaluate", "main", "check_shapes", "arrays", "AXES", "DERIVATIVES"}) | frozenset(
    dir(builtins)
)


def python_names(variables: dict[str, int]) -> dict[str, str]:
    """A Python identifier for each tensor name: the name itself unless it is a keyword or taken."""
    out = {}
    for name in variables:
        ident = name if name.isidentifier() and not keyword.iskeyword(name) and name not in _PY_TAKEN else name + "_"
        while not ident.isidentifier() or keyword.iskeyword(ident) or ident in _PY_TAKEN:
            ident += "_"
        out[name] = ident
    return out


def _chains(expr: Expr, wrt: tuple[str, ...]) -> list[list[str]]:
    from .cli import split_specs

    return [split_specs(w) for w in wrt]


def _derivative_label(expr: Expr, d: Expr, chain: list[str], latex: bool) -> str:
    """``∂²f/∂x_k∂x_l`` (text) or its LaTeX: the new indices are the last ones of ``d.free``."""
    f = expr.name or "f"
    base = len(expr.free)
    parts, k = [], base
    for spec in chain:
        name = spec.split("_")[0]
        rank = expr.variables[name]
        idx = d.free[k : k + rank]
        k += rank
        parts.append((name, idx))
    n = len(chain)
    if latex:
        from .printer import latex_name

        head = latex_name(f) + ("_{" + "".join(latex_name(i) for i in expr.free) + "}" if expr.free else "")
        power = f"^{{{n}}}" if n > 1 else ""
        den = " ".join(
            rf"\partial {latex_name(v)}" + ("_{" + "".join(latex_name(i) for i in idx) + "}" if idx else "")
            for v, idx in parts
        )
        return rf"\frac{{\partial{power} {head}}}{{{den}}}"
    head = f + ("_" + "".join(expr.free) if expr.free else "")
    den = "".join(f"∂{v}" + ("_" + "".join(idx) if idx else "") for v, idx in parts)
    return f"∂{'^' + str(n) if n > 1 else ''}{head}/{den}"


def latex_text(expr: Expr, *wrt: str) -> str:
    """The expression and its derivatives in LaTeX, one equation a line."""
    from .diff import diff
    from .printer import latex_name, to_latex

    f = expr.name or "f"
    head = latex_name(f) + ("_{" + "".join(latex_name(i) for i in expr.free) + "}" if expr.free else "")
    lines = [to_latex(expr, lhs=head)]
    for chain in _chains(expr, wrt):
        d = diff(expr, *chain)
        lines.append(to_latex(d, lhs=_derivative_label(expr, d, chain, latex=True)))
    return "\n".join(lines)


#: How every generated module's code starts, after its docstring text.
_SCRIPT_START = ('"""', "", "import sys", "", "import numpy as np", "")
#: How every generated module ends: main() reports failures through the exit status.
_SCRIPT_END = ("    return 1 if failed else 0", "", "", 'if __name__ == "__main__":', "    sys.exit(main())", "")


def python_text(expr: Expr, *wrt: str) -> str:
    """A standalone numpy module computing ``expr`` and its derivatives; run as a script it checks them."""
    from .check import _shapes
    from .diff import diff
    from .simplify import simplify

    names = python_names(expr.variables)
    chains = _chains(expr, wrt)
    # Every expression the checks need: each requested derivative and the one it differentiates.
    exprs: dict[tuple[str, ...], Expr] = {(): expr}
    for chain in chains:
        for k in range(1, len(chain) + 1):
            key = tuple(chain[:k])
            if key not in exprs:
                exprs[key] = diff(exprs[key[:-1]], key[-1])
    slot = {key: k for k, key in enumerate(exprs)}
    stable = {
        key: Expr(simplify(e.node, frozenset(e.free)), e.free, e.name, e.variables, e.origins)
        for key, e in exprs.items()
    }
    _, sizes = _shapes(expr, {})
    axes = _axes(expr)
    params = ", ".join(names[n] for n in expr.variables)
    f = expr.name or "f"
    doc = [f"    {f}{'_' + ''.join(expr.free) if expr.free else ''} = {expr}" if expr.name is None else f"    {expr}"]
    for chain in chains:
        d = exprs[tuple(chain)]
        doc.append(f"    {_derivative_label(expr, d, chain, latex=False)} = {d}")
    out: list[str] = [
        '"""Generated by indexdiff from index notation:',
        "",
        *doc,
        "",
        "evaluate(...) returns the value and the derivatives, axes in the order of their indices.",
        "Run this file as a script to check every derivative against central differences on random data.",
        *_SCRIPT_START,
        "# The axes each tensor's indices name, for the shape checks.",
        f"AXES = {{{', '.join(repr(names[n]) + ': ' + repr(axes[n]) for n in expr.variables)}}}",
        f"DERIVATIVES = {[(tuple(c), tuple(c[:-1]), names[c[-1].split('_')[0]]) for c in chains]!r}",
        "",
        "",
        "def check_shapes(arrays):",
        '    """Raise ValueError when an array has the wrong number of axes or an index two different lengths."""',
        "    seen = {}",
        "    for name, letters in AXES.items():",
        "        a = arrays[name]",
        "        if a.ndim != len(letters):",
        '            raise ValueError(f"{name} needs {len(letters)} axes, got shape {a.shape}")',
        "        for axis, (index, n) in enumerate(zip(letters, a.shape)):",
        "            where = seen.setdefault(index, (name, axis, n))",
        "            if where[2] != n:",
        '                raise ValueError(f"index {index}: {where[0]} axis {where[1]} has length {where[2]}, "',
        '                                 f"{name} axis {axis} has {n}")',
        "",
        "",
    ]
    for key, e in exprs.items():
        out += [
            f"def _e{slot[key]}({params}):",
            f'    """{f if not key else _derivative_label(expr, e, list(key), latex=False)}"""',
            f"    return {einsum_text(stable[key], names)}",
            "",
            "",
        ]
    returns = ", ".join(f"_e{slot[(tuple(c))]}({params})" for c in chains)
    out += [
        f"def evaluate({params}):",
        f'    """The value{" and the derivatives" if chains else ""} (see the module docstring)."""',
        "    arrays = {"
        + ", ".join(f"{names[n]!r}: np.asarray({names[n]}, dtype=float)" for n in expr.variables)
        + "}",
        "    check_shapes(arrays)",
        f"    {params}{',' if len(expr.variables) == 1 else ''} = arrays.values()" if expr.variables else "    pass",
        f"    return (_e0({params}){', ' + returns if returns else ''})" if chains else f"    return _e0({params})",
        "",
        "",
        "_FUNCTIONS = {" + ", ".join(f"{key!r}: _e{k}" for key, k in slot.items()) + "}",
        "",
        "",
        "def _central(f, arrays, name, h=1e-5):",
        "    x = arrays[name]",
        "    base = np.asarray(f(**arrays))",
        "    out = np.empty(base.shape + x.shape)",
        "    for idx in np.ndindex(*x.shape):",
        "        step = h * max(1.0, abs(float(x[idx])))",
        "        plus, minus = x.copy(), x.copy()",
        "        plus[idx] += step",
        "        minus[idx] -= step",
        "        out[(Ellipsis, *idx)] = (f(**{**arrays, name: plus}) - f(**{**arrays, name: minus})) / (2 * step)",
        "    return out",
        "",
        "",
        "def main():",
        '    """Random data (uniform in [0.5, 1.5]); each derivative against central differences of its parent."""',
        "    rng = np.random.default_rng(0)",
        f"    sizes = { ({axes_root: sizes[axes_root] for n in expr.variables for axes_root in axes[n]})!r}",
        "    arrays = {n: rng.uniform(0.5, 1.5, size=tuple(sizes[i] for i in axes)) for n, axes in AXES.items()}",
        "    evaluate(**arrays)",
        "    failed = 0",
        "    for chain, parent, name in DERIVATIVES:",
        "        symbolic = _FUNCTIONS[chain](**arrays)",
        "        numeric = _central(_FUNCTIONS[parent], arrays, name)",
        "        f_scale = float(np.max(np.abs(_FUNCTIONS[parent](**arrays)), initial=0.0))",
        "        scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))",
        "        err = np.abs(symbolic - numeric)",
        "        tol = 1e-7 * scale + 1e-5 * np.abs(numeric) + 100 * np.finfo(float).eps * f_scale / 1e-5",
        "        ok = bool(np.all(np.isfinite(symbolic)) and np.all(err <= tol))",
        "        failed += not ok",
        "        status = 'ok' if ok else 'FAILED'",
        "        print(f\"d/d{'/d'.join(chain)}: {status} (max abs error {np.max(err, initial=0):.2e})\")",
        *_SCRIPT_END,
    ]
    return "\n".join(out)


def _axes(expr: Expr) -> dict[str, tuple[str, ...]]:
    """Each tensor's axes, named by index class: letters that share a tensor axis (or a δ) are one class."""
    from .names import UnionFind

    classes = UnionFind()
    first: dict[str, tuple[str, ...]] = {}
    stack = [expr.node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            for a, b in zip(first.setdefault(n.name, n.indices), n.indices):
                classes.union(a, b)
        elif isinstance(n, Delta) and len(n.indices) == 2:
            classes.union(*n.indices)
        stack.extend(children(n))
    out = {name: tuple(classes.find(i) for i in letters) for name, letters in first.items()}
    for name, rank in expr.variables.items():
        out.setdefault(name, tuple(f"{name}{k}" for k in range(rank)))
    return out


def codegen(expr: Expr | Program, *wrt: str, format: str = "python", loss: str | None = None) -> str:  # noqa: A002
    """``expr`` and its derivatives by each of ``wrt`` (``"x"``, ``"x,x"``, ``"A_kl"``) as code.

    ``format`` is ``"python"`` (a standalone numpy module that checks itself when run), ``"latex"`` or
    ``"einsum"`` (one numpy expression per line). For a program with ``"python"``, the module has ``forward`` and
    ``gradients`` (its backward pass by reverse mode, ``loss`` being the last statement unless named).
    """
    from .diff import diff
    from .program import inline

    if isinstance(expr, Program) and format == "python" and wrt:
        return program_python_text(expr, tuple(w.split("_")[0] for w in wrt), loss)
    if isinstance(expr, Program):
        expr = inline(expr, loss)
    if format == "python":
        return python_text(expr, *wrt)
    if format == "latex":
        return latex_text(expr, *wrt)
    if format == "einsum":
        return "\n".join(einsum_text(e) for e in (expr, *(diff(expr, *c) for c in _chains(expr, wrt))))
    raise IndexDiffError(f"unknown format {format!r}", hint="use python, latex or einsum")


def program_python_text(program: Program, wrt: tuple[str, ...], loss: str | None = None) -> str:
    """A standalone numpy module for a program: ``forward(...)`` returns the loss, ``gradients(...)`` the loss and
    its gradients (the backward pass ix.grad derives); run as a script it checks them by central differences."""
    from .check import _shapes
    from .reverse import grad
    from .simplify import simplify

    for w in wrt:
        if w not in program.inputs:
            raise IndexDiffError(
                f"a generated program module takes gradients by inputs; '{w}' is not an input",
                w,
                0,
                len(w),
                hint=f"the inputs are: {', '.join(program.inputs)} (ix.grad itself also takes intermediates)",
            )
    gradient = grad(program, loss, list(wrt))
    names = python_names({**program.inputs, **{s.name: 0 for s in gradient.statements}})
    inputs = [n for n in program.inputs if any(n in s.variables for s in gradient.statements) or n in wrt]
    params = ", ".join(names[n] for n in inputs)
    n_forward = program.names.index(gradient.outputs[0]) + 1

    def body(statements: tuple[Expr, ...]) -> list[str]:
        lines = []
        for s in statements:
            stable = Expr(simplify(s.node, frozenset(s.free)), s.free, s.name, s.variables, s.origins)
            lines.append(f"    {names[s.name]} = {einsum_text(stable, names)}  # {s}")
        return lines

    outputs = ", ".join(names[n] for n in gradient.outputs)
    # Every statement (and what it defines) in one node, so that an input used anywhere gets a shape.
    everything = Mul(tuple(Mul((Tensor(s.name, s.free), s.node)) for s in program.statements))
    shapes, _ = _shapes(Expr(everything, (), None, program.inputs, {}), {})
    sizes = {n: shapes[n] for n in inputs}
    out = [
        '"""Generated by indexdiff from this program and its backward pass (reverse mode):',
        "",
        *(f"    {s}" for s in gradient.statements),
        "",
        "forward(...) returns the loss; gradients(...) returns the loss and d/d" + ", d/d".join(wrt) + ".",
        "Run this file as a script to check the gradients against central differences on random data.",
        *_SCRIPT_START,
        f"SHAPES = {{{', '.join(f'{names[n]!r}: {sizes[n]!r}' for n in inputs)}}}",
        f"WRT = {[names[w] for w in wrt]!r}",
        "",
        "",
        f"def forward({params}):",
        '    """The loss."""',
        *body(gradient.statements[:n_forward]),
        f"    return {names[gradient.outputs[0]]}",
        "",
        "",
        f"def gradients({params}):",
        '    """The loss and its gradients, forward intermediates computed once."""',
        *body(gradient.statements),
        f"    return {outputs}",
        "",
        "",
        "def main():",
        '    """Random data (uniform in [0.5, 1.5]); each gradient against central differences of forward."""',
        "    rng = np.random.default_rng(0)",
        "    arrays = {name: rng.uniform(0.5, 1.5, size=shape) for name, shape in SHAPES.items()}",
        "    loss, *grads = gradients(**arrays)",
        "    failed = 0",
        "    for name, symbolic in zip(WRT, grads):",
        "        x = arrays[name]",
        "        numeric = np.zeros(np.shape(x))",
        "        for idx in np.ndindex(*np.shape(x)):",
        "            h = 1e-5 * max(1.0, abs(float(x[idx])))",
        "            plus, minus = np.array(x, dtype=float), np.array(x, dtype=float)",
        "            plus[idx] += h",
        "            minus[idx] -= h",
        "            numeric[idx] = (forward(**{**arrays, name: plus}) - forward(**{**arrays, name: minus})) / (2 * h)",
        "        err = float(np.max(np.abs(symbolic - numeric), initial=0.0))",
        "        ok = err <= 1e-6 * max(1.0, float(np.max(np.abs(numeric), initial=0.0)), abs(float(loss)))",
        "        failed += not ok",
        "        print(f\"d/d{name}: {'ok' if ok else 'FAILED'} (max abs error {err:.2e})\")",
        *_SCRIPT_END,
    ]
    return "\n".join(out)
