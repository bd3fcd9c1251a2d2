"""Expressions as code: numpy einsum calls, one per product term."""

from __future__ import annotations

import builtins
import keyword
import re

from .custom import module_lines
from .einsumcode import EinsumCode, Temporaries, einsum_text, helper_lines
from .errors import IndexDiffError, expect_expr, expect_specs
from .expr import Expr, Mul, Program, Tensor, depth_safe
from .moduletext import CHECK, FLOAT_ARRAYS, SCRIPT_END, SCRIPT_START, matrix_data
from .names import children, tensor_names

__all__ = ["codegen", "einsum_text", "latex_text", "python_text", "python_names"]

#: Names the generated module uses itself (and Python's builtins): a tensor with such a name gets a trailing _.
_PY_TAKEN = frozenset(
    {"np", "sys", "evaluate", "main", "check", "check_shapes", "arrays", "AXES", "DERIVATIVES", "SIZES", "SHAPES"}
    | {"WRT", "forward", "gradients", "dtype"}
) | frozenset(dir(builtins))


def python_names(variables: dict[str, int]) -> dict[str, str]:
    """A distinct Python identifier for each tensor name: the name itself unless it is a keyword or taken (then
    with a trailing _); characters an identifier cannot hold become their code point (U+03A2 -> u03a2)."""
    out: dict[str, str] = {}
    for name in variables:
        ident = "".join(c if ("_" + c).isidentifier() else f"u{ord(c):04x}" for c in name)
        if not ident.isidentifier():  # starts with a digit
            ident = "t" + ident
        # Each round appends one _, which leaves an identifier an identifier; at most this many names are in use.
        for _ in range(len(_PY_TAKEN) + len(out) + 1):
            if not (keyword.iskeyword(ident) or ident in _PY_TAKEN or ident in out.values()):
                break
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


def _version(e: Expr, names: dict[str, str]) -> Expr:
    """The simplified expression (stable functions), or the expression as written where the simplified one needs a
    length no array gives, so that its size parameter has the name the user gave the index."""
    from .simplify import simplify

    simplified = Expr(simplify(e.node, frozenset(e.free)), e.free, e.name, e.variables, e.origins)
    code = EinsumCode(simplified, names, helpers=True)
    code.text()
    return e if code.params else simplified


def _fresh(name: str, taken: set[str]) -> str:
    """``name``, or with trailing _ until no name in ``taken`` has it; taken then holds it."""
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _shared_code(
    items: list[tuple[str, Expr, str]], names: dict[str, str], dtype: str | None
) -> tuple[list[str], dict[str, str]]:
    """Lines assigning each expression to its variable (items: variable, expression, trailing comment), a
    subexpression used more than once (in one expression or across them) computed once into a temporary t0, t1...
    before the first line that needs it; and the size parameters the code uses."""
    versions = [(out, _version(e, names), comment) for out, e, comment in items]
    counting = Temporaries()
    for _, e, _ in versions:
        EinsumCode(e, names, True, counting, dtype).text()
    temps = Temporaries({*names.values(), *(out for out, _, _ in items)}, counting)
    lines: list[str] = []
    params: dict[str, str] = {}
    for out, e, comment in versions:
        code = EinsumCode(e, names, True, temps, dtype)
        text = code.text()
        params.update(code.params)
        lines += [*temps.take(), f"{out} = {text}{comment}"]
    return lines, params


def _signature(params: str, size_params: dict[str, str]) -> str:
    """A generated function's parameters: the arrays, then the size parameters, keyword-only."""
    return ", ".join([*filter(None, [params]), *(["*", *size_params] if size_params else [])])


def python_text(expr: Expr, *wrt: str) -> str:
    """A standalone numpy module computing ``expr`` and its derivatives; run as a script it checks them."""
    from .data import matrix_axes, shapes
    from .diff import diff
    from .symmetric import symmetric_lines

    names = python_names(expr.variables)
    chains = _chains(expr, wrt)
    # Every expression the checks need: each requested derivative and the one it differentiates.
    exprs: dict[tuple[str, ...], Expr] = {(): expr}
    for chain in chains:
        for k in range(1, len(chain) + 1):
            key = tuple(chain[:k])
            if key not in exprs:
                exprs[key] = diff(exprs[key[:-1]], key[-1])
    # evaluate computes the value and each requested derivative in one body; a lower derivative only the self-check
    # needs (the gradient of a requested Hessian) gets a function of its own, _e<k>.
    requested = [(), *dict.fromkeys(tuple(c) for c in chains)]
    taken = set(names.values())
    outs = {
        key: _fresh("_".join(["d", *(names[v.split("_")[0]] for v in key)]) if key else "value", taken) for key in exprs
    }
    body, size_params = _shared_code([(outs[k], exprs[k], "") for k in requested], names, "dtype")
    slot = {key: k for k, key in enumerate(exprs)}
    parents: dict[tuple[str, ...], list[str]] = {}
    for key in exprs:
        if key not in requested:
            parents[key], params = _shared_code([(outs[key], exprs[key], "")], names, "dtype")
            size_params.update(params)
    _, sizes = shapes(expr, {})
    axes = _axes(expr)
    symmetric = symmetric_lines([names[n] for n in sorted(expr.symmetric & tensor_names(expr.node))])
    params = ", ".join(names[n] for n in expr.variables)
    signature = _signature(params, size_params)
    f = expr.name or "f"
    doc = [f"    {f}{'_' + ''.join(expr.free) if expr.free else ''} = {expr}" if expr.name is None else f"    {expr}"]
    for chain in chains:
        d = exprs[tuple(chain)]
        doc.append(f"    {_derivative_label(expr, d, chain, latex=False)} = {d}")
    plural = "s" if len(size_params) == 1 else ""
    lengths = f"; {', '.join(size_params)} give{plural} lengths no array has." if size_params else "."
    data_sizes = {a: sizes.get(a.split("#")[0], 3) for n in expr.variables for a in axes[n]}
    out: list[str] = [
        '"""Generated by indexdiff from index notation:',
        "",
        *doc,
        "",
        "evaluate(...) returns the value and the derivatives, axes in the order of their indices" + lengths,
        "Run this file as a script to check every derivative against central differences on random data.",
        *SCRIPT_START,
        *module_lines([e.node for e in exprs.values()]),
        *helper_lines([*body, *(line for lines in parents.values() for line in lines)]),
        *FLOAT_ARRAYS,
        "# The axes each tensor's indices name, for the shape checks.",
        f"AXES = {{{', '.join(repr(names[n]) + ': ' + repr(axes[n]) for n in expr.variables)}}}",
        f"DERIVATIVES = {[(tuple(c), tuple(c[:-1]), names[c[-1].split('_')[0]]) for c in chains]!r}",
        f"SIZES = {size_params!r}  # size parameters and the index each gives the length of",
        *symmetric["constants"],
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
    arrays = "{" + ", ".join(f"{names[n]!r}: {names[n]}" for n in expr.variables) + "}"
    start = [f"    arrays, dtype = _float_arrays({arrays})"]
    unpack = [f"    {params}{',' if len(expr.variables) == 1 else ''} = arrays.values()"] if expr.variables else []
    for key, lines in parents.items():
        out += [
            f"def _e{slot[key]}({signature}):",
            f'    """{_derivative_label(expr, exprs[key], list(key), latex=False)} (for the self-check)."""',
            *start,
            *unpack,
            *(f"    {line}" for line in lines),
            f"    return {outs[key]}",
            "",
            "",
        ]
    returns = ", ".join(f"np.asarray({outs[key]}, dtype)" for key in requested)
    functions = {key: f"_e{slot[key]}" for key in parents}
    for k, key in enumerate(requested):
        functions[key] = f"lambda **a: evaluate(**a)[{k}]" if chains else "evaluate"
    functions = {key: functions[key] for key in exprs}
    out += [
        f"def evaluate({signature}):",
        f'    """The value{" and the derivatives" if chains else ""} (see the module docstring), computed in',
        '    the arrays\' common float dtype (integers and booleans count as float64)."""',
        *start,
        "    check_shapes(arrays)",
        *symmetric["evaluate"],
        *unpack,
        *(f"    {line}" for line in body),
        f"    return {returns}",
        "",
        "",
        "# Each expression as a function of the arrays, for the self-check.",
        "_FUNCTIONS = {" + ", ".join(f"{key!r}: {f}" for key, f in functions.items()) + "}",
        *symmetric["functions"],
        "",
        "",
        *CHECK,
        "def check(arrays):",
        '    """Each derivative against Richardson-extrapolated central differences of its parent at ``arrays`` (size',
        '    parameters included): {chain: (ok, max abs error)}."""',
        "    arrays = {n: np.asarray(a, dtype=float) if n in AXES else a for n, a in arrays.items()}",
        "    results = {}",
        "    for chain, parent, name in DERIVATIVES:",
        "        symbolic = np.asarray(_FUNCTIONS[chain](**arrays), dtype=float)",
        "        numeric, bound = _richardson(_FUNCTIONS[parent], arrays, name)",
        "        err = np.abs(symbolic - numeric)",
        "        finite = np.all(np.isfinite(symbolic)) and np.all(np.isfinite(numeric))",
        "        results[chain] = (bool(finite and np.all(err <= bound)), float(np.max(err, initial=0.0)))",
        "    return results",
        "",
        "",
        "def main():",
        '    """Random data (uniform in [0.5, 1.5]); each derivative against central differences of its parent."""',
        "    rng = np.random.default_rng(0)",
        f"    sizes = {data_sizes!r}",
        "    arrays = {n: rng.uniform(0.5, 1.5, size=tuple(sizes[i] for i in axes)) for n, axes in AXES.items()}",
        *matrix_data({names[n]: axes for n, axes in matrix_axes(expr).items()}),
        *symmetric["data"],
        f"    arrays.update({ {p: sizes.get(i, 3) for p, i in size_params.items()}!r})",
        "    evaluate(**arrays)",
        "    failed = 0",
        "    for chain, (ok, err) in check(arrays).items():",
        "        failed += not ok",
        "        print(f\"d/d{'/d'.join(chain)}: {'ok' if ok else 'FAILED'} (max abs error {err:.2e})\")",
        *SCRIPT_END,
    ]
    return "\n".join(out)


def _axes(expr: Expr) -> dict[str, tuple[str, ...]]:
    """Each tensor's axes, named by index class: letters that share a tensor axis (or a δ, or a matrix function's
    argument) are one class; the indices of different Σs are different indices even where they share a name (b,
    b#1)."""
    from .data import joined_indices
    from .evaluate import unique_summed
    from .names import UnionFind

    classes = UnionFind()
    first: dict[str, tuple[str, ...]] = {}
    node = unique_summed(expr.node, expr.free)
    for pair in joined_indices(node):
        classes.union(*pair)
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            for a, b in zip(first.setdefault(n.name, n.indices), n.indices):
                classes.union(a, b)
        stack.extend(children(n))
    out = {name: tuple(classes.find(i) for i in letters) for name, letters in first.items()}
    for name, rank in expr.variables.items():
        out.setdefault(name, tuple(f"{name}{k}" for k in range(rank)))
    return out


@depth_safe
def codegen(expr: Expr | Program, *wrt: str, format: str = "python", loss: str | None = None) -> str:  # noqa: A002
    """``expr`` and its derivatives by each of ``wrt`` (``"x"``, ``"x,x"``, ``"A_kl"``) as code.

    ``format`` is ``"python"`` (a standalone numpy module that checks itself when run), ``"latex"`` or
    ``"einsum"`` (one numpy expression per line). For a program with ``"python"``, the module has ``forward`` and
    ``gradients`` (its backward pass by reverse mode, ``loss`` being the last statement unless named); with
    ``"einsum"`` or ``"latex"``, one line per statement of the program and of its derivative programs.
    Matrix notation: ``"matrix"`` (text), ``"latex-matrix"`` and ``"numpy"`` (functions using ``@``, ``.T``,
    broadcasting; see ``matrixcode.py``); terms without a matrix form stay index notation (einsum in numpy).
    """
    from .diff import diff
    from .program import outputs_of, program_einsum, program_latex, used

    expect_expr(expr, "codegen")
    expect_specs(wrt, "codegen")
    if format in ("matrix", "latex-matrix", "numpy"):  # matrix notation (matrixcode.py)
        from .matrixcode import matrix_code

        return matrix_code(expr, _chains(expr, wrt), format, loss)
    if isinstance(expr, Program) and format == "python":
        return program_python_text(expr, tuple(wrt), loss)
    if isinstance(expr, Program) and format in ("einsum", "latex"):  # statement by statement
        if not wrt and loss is None:  # every output (ix.grad's program: the loss and each gradient)
            programs = [Program(used(expr.statements, expr.outputs), expr.outputs)]
        else:
            programs = outputs_of(expr, _chains(expr.statements[-1], wrt), loss)
        return program_einsum(programs) if format == "einsum" else program_latex(programs)
    if isinstance(expr, Program):
        raise IndexDiffError(
            f"unknown format {format!r}", hint="use python, latex, einsum, matrix, latex-matrix or numpy"
        )
    if format == "python":
        return python_text(expr, *wrt)
    if format == "latex":
        return latex_text(expr, *wrt)
    if format == "einsum":
        return "\n".join(einsum_text(e) for e in (expr, *(diff(expr, *c) for c in _chains(expr, wrt))))
    raise IndexDiffError(f"unknown format {format!r}", hint="use python, latex, einsum, matrix, latex-matrix or numpy")


def program_python_text(program: Program, wrt: tuple[str, ...], loss: str | None = None) -> str:
    """A standalone numpy module for a program: ``forward(...)`` returns the loss, ``gradients(...)`` the loss and
    its gradients (the backward pass ix.grad derives); run as a script it checks them by central differences."""
    from .data import matrix_axes, shapes
    from .forward import needed
    from .program import used
    from .reverse import grad

    specs = []
    for chain in _chains(program.statements[-1], wrt):
        if len(chain) > 1:
            raise IndexDiffError(
                f"a generated program module computes gradients, not the derivative {','.join(chain)}",
                ",".join(chain),
                0,
                len(",".join(chain)),
                hint="give one variable per gradient; --format einsum (ix.codegen) writes higher derivatives",
            )
        specs.append(chain[0])
    wrt = tuple(s.split("_")[0].strip() for s in specs)
    for w in wrt:
        if w not in program.inputs:
            raise IndexDiffError(
                f"a generated program module takes gradients by inputs; '{w}' is not an input",
                w,
                0,
                len(w),
                hint=f"the inputs are: {', '.join(program.inputs)} (ix.grad itself also takes intermediates)",
            )
    # Only the statements the outputs need: one the loss does not use would ask for arrays or lengths for nothing.
    if specs:
        gradient = grad(program, loss, specs)
        gradient = Program(used(gradient.statements, gradient.outputs), gradient.outputs)
    else:  # the forward pass alone
        gradient = Program(needed(program, loss))
    names = python_names({**program.inputs, **{s.name: 0 for s in gradient.statements}})
    inputs = list(program.inputs)  # every input of the program, as ix.compile takes them (unused ones ignored)
    params = ", ".join(names[n] for n in inputs)
    n_forward = gradient.names.index(gradient.outputs[0]) + 1

    size_params: dict[str, str] = {}

    def body(statements: tuple[Expr, ...]) -> list[str]:
        lines, used = _shared_code([(names[s.name], s, f"  # {s}") for s in statements], names, "dtype")
        size_params.update(used)
        # The arrays the code makes (np.ones, np.eye) in the inputs' dtype, integers counting as float64.
        dtype = [f"    dtype = np.result_type({', '.join([*(names[n] for n in inputs), '1.0'])})"]
        return [*(dtype if any(re.search(r"\bdtype\b", line) for line in lines) else []), *(f"    {x}" for x in lines)]

    forward_body, gradients_body = body(gradient.statements[:n_forward]), body(gradient.statements)
    signature = _signature(params, size_params)

    outputs = ", ".join(names[n] for n in gradient.outputs)
    # Every statement (and what it defines) in one node, so that an input used anywhere gets a shape.
    everything = Mul(tuple(Mul((Tensor(s.name, s.free), s.node)) for s in program.statements))
    whole = Expr(everything, (), None, program.inputs, {})
    definitions = {s.name: s.node for s in program.statements if s.name}
    found, letters = shapes(whole, {})
    sizes = {n: found[n] for n in inputs}
    out = [
        '"""Generated by indexdiff from this program and its backward pass (reverse mode):',
        "",
        *(f"    {s}" for s in gradient.statements),
        "",
        "forward(...) returns the loss; gradients(...) returns the loss" + "".join(f", d/d{w}" for w in wrt) + ".",
        "Run this file as a script to check the gradients against central differences on random data.",
        *SCRIPT_START,
        *module_lines([s.node for s in gradient.statements]),
        *helper_lines([*forward_body, *gradients_body]),
        f"SHAPES = {{{', '.join(f'{names[n]!r}: {sizes[n]!r}' for n in inputs)}}}",
        f"WRT = {[names[w] for w in wrt]!r}",
        f"SIZES = { {p: letters.get(i, 3) for p, i in size_params.items()}!r}  # lengths no array gives",
        "",
        "",
        f"def forward({signature}):",
        '    """The loss."""',
        *forward_body,
        f"    return {names[gradient.outputs[0]]}",
        "",
        "",
        f"def gradients({signature}):",
        '    """The loss and its gradients, forward intermediates computed once."""',
        *gradients_body,
        f"    return {outputs}",
        "",
        "",
        *CHECK,
        "def check(arrays):",
        '    """Each gradient against Richardson-extrapolated central differences of forward at ``arrays``:',
        '    {name: (ok, max abs error)}."""',
        "    if not WRT:",
        "        return {}",
        "    arrays = {n: np.asarray(a, dtype=float) if n in SHAPES else a for n, a in arrays.items()}",
        "    _, *grads = gradients(**arrays)",
        "    results = {}",
        "    for name, symbolic in zip(WRT, grads):",
        "        numeric, bound = _richardson(forward, arrays, name)",
        "        err = np.abs(np.asarray(symbolic, dtype=float) - numeric)",
        "        finite = np.all(np.isfinite(symbolic)) and np.all(np.isfinite(numeric))",
        "        results[name] = (bool(finite and np.all(err <= bound)), float(np.max(err, initial=0.0)))",
        "    return results",
        "",
        "",
        "def main():",
        '    """Random data (uniform in [0.5, 1.5]); each gradient against central differences of forward."""',
        "    rng = np.random.default_rng(0)",
        "    arrays = {name: rng.uniform(0.5, 1.5, size=shape) for name, shape in SHAPES.items()}",
        *matrix_data({names[n]: axes for n, axes in matrix_axes(whole, definitions).items()}),
        "    forward(**arrays, **SIZES)",
        "    failed = 0",
        "    for name, (ok, err) in check({**arrays, **SIZES}).items():",
        "        failed += not ok",
        "        print(f\"d/d{name}: {'ok' if ok else 'FAILED'} (max abs error {err:.2e})\")",
        *SCRIPT_END,
    ]
    return "\n".join(out)
