"""Users' element-wise functions: ``ix.function("gelu", numpy=..., derivative="...")``.

A registered function joins the function table (``functions.FUNCTIONS``) itself, so the parser, the printer (text and
LaTeX), the evaluator, ``ix.compile``, ``ix.check`` and the derivative rules all see it. Its derivative is index
notation in terms of the argument ``u``, parsed once; differentiating substitutes the argument for ``u``, so second
and higher derivatives follow (the derivative may use the function itself, as exp's does, or other registered ones).
Generated numpy code calls the function by its name; a generated module imports the numpy implementation from the
module that defines it (``module_lines``).
"""

from __future__ import annotations

import builtins
import importlib
import keyword
import re
import sys
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ArgumentError, IndexDiffError, ParseError
from .expr import Expr, Func, Node, Tensor
from .functions import FUNCTIONS, RESERVED, Function
from .lazy import numpy_on_demand
from .names import all_indices, children, rebuild

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_on_demand(globals())  # registering and parsing need no numpy; checking an implementation does

__all__ = ["function", "CustomFunction", "module_lines"]

#: The argument's name in a derivative's text.
ARGUMENT = "u"

_NAME = re.compile(
    r"[A-Za-z\u0391-\u03a1\u03a3-\u03a9\u03b1-\u03c9][A-Za-z0-9\u0391-\u03a1\u03a3-\u03a9\u03b1-\u03c9]*$"
)


class CustomFunction:
    """A registered function. ``remove()`` unregisters it (restoring a definition it replaced); used as a
    context manager (``with ix.function(...):``) it is registered inside the block only."""

    def __init__(self, name: str, spec: Function, previous: Function | None, registered: bool = True) -> None:
        self.name = name
        self.spec = spec
        self._previous = previous
        self._registered = registered  # False: the same definition again, which remove() leaves registered

    @property
    def numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        return self.spec.numpy

    @property
    def derivative(self) -> str:
        return self.spec.custom or ""

    def remove(self) -> None:
        """Unregister the function (restoring the definition it replaced, if any); a handle of a definition
        registered again changes nothing."""
        if not self._registered or FUNCTIONS.get(self.name) is not self.spec:
            return  # registered before, already removed, or replaced since
        users = [n for n, f in FUNCTIONS.items() if n != self.name and f.custom and _uses(f, self.name)]
        if users:
            raise IndexDiffError(
                f"cannot remove '{self.name}': the derivative of {', '.join(users)} uses it",
                self.name,
                0,
                len(self.name),
                hint=f"remove {', '.join(users)} first",
            )
        if self._previous is None:
            del FUNCTIONS[self.name]
        else:
            FUNCTIONS[self.name] = self._previous

    def __enter__(self) -> CustomFunction:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"ix.function({self.name!r}, derivative={self.derivative!r})"


def function(
    name: str,
    numpy: Callable[[np.ndarray], np.ndarray],
    derivative: str,
    latex: str | None = None,
    *,
    replace: bool = False,
) -> CustomFunction:
    """Register the element-wise function ``name``: ``numpy(a)`` computes it on an array (same shape, keeping a
    float32 array float32 where it can), ``derivative`` is f'(u) in index notation in terms of the argument ``u``
    (numbers, ``u`` and functions, registered ones included: ``"2 exp(-u^2) / sqrt(3.141592653589793)"``), and
    ``latex`` its LaTeX name (default ``\\operatorname{name}``).

    Registering the same definition again does nothing; another one under a registered name needs
    ``replace=True``. The returned handle's ``remove()`` unregisters it (restoring what it replaced); as a context
    manager it registers for the block. Differentiating after a redefinition uses the new rule (derivatives taken
    before keep the old one); a compiled function keeps the implementation its first call found.

    >>> import numpy as np, indexdiff as ix
    >>> with ix.function("cube", numpy=lambda a: a**3, derivative="3 u^2"):
    ...     print(ix.diff(ix.parse("sum_i(cube(x_i))"), "x"))
    3 x_k^2
    """
    _check_name(name)
    if not callable(numpy):
        raise ArgumentError(
            f"numpy= must be a function of an array, got {type(numpy).__name__}",
            hint="pass numpy=lambda a: ... (a numpy array in, an array of the same shape out)",
        )
    if not isinstance(derivative, str):
        raise ArgumentError(
            f"derivative= must be index notation in terms of u (a string), got {type(derivative).__name__}",
            hint='e.g. derivative="1 - tanh(u)^2"',
        )
    if latex is not None and not isinstance(latex, str):
        raise ArgumentError(f"latex= must be a string, got {type(latex).__name__}", hint=r'e.g. latex=r"\mathrm{GELU}"')
    _check_numpy(name, numpy)
    previous = FUNCTIONS.get(name)
    latex = latex if latex is not None else rf"\operatorname{{{name}}}"
    if previous is not None:
        if previous.custom is None:
            raise IndexDiffError(
                f"'{name}' is a built-in function and cannot be redefined",
                name,
                0,
                len(name),
                hint=f"choose another name (built in: {', '.join(n for n, f in FUNCTIONS.items() if not f.custom)})",
            )
        if previous.numpy is numpy and previous.custom == derivative and previous.latex == latex:
            return CustomFunction(name, previous, None, registered=False)  # the same definition again
        if not replace:
            raise IndexDiffError(
                f"'{name}' is already registered with another definition",
                name,
                0,
                len(name),
                hint="pass replace=True to redefine it, or remove() the old one first",
            )
    # Registered before its derivative is parsed, so that the derivative may use the function itself.
    spec = Function(numpy, _unset, latex, derivative)
    FUNCTIONS[name] = spec
    try:
        template = _template(name, derivative)
    except BaseException:
        if previous is None:
            del FUNCTIONS[name]
        else:
            FUNCTIONS[name] = previous
        raise
    spec = Function(numpy, lambda u: _substitute(template, u, {}), latex, derivative)
    FUNCTIONS[name] = spec
    return CustomFunction(name, spec, previous)


def _unset(u: Node) -> Node:
    raise AssertionError("the derivative is used before it is parsed")


def _check_name(name: object) -> None:
    from .codegen import _PY_TAKEN
    from .operators import OPERATORS

    if not isinstance(name, str):
        raise ArgumentError(f"a function's name must be a string, got {type(name).__name__}", hint="e.g. 'gelu'")
    hint = "a name is a letter and then letters or digits (no underscore: name_i( is an operator over i)"
    if not _NAME.match(name):
        raise IndexDiffError(f"'{name}' cannot name a function", name, 0, len(name) or 1, hint=hint)
    if name in OPERATORS or name == "Σ" or (name in RESERVED and name not in FUNCTIONS):
        raise IndexDiffError(
            f"'{name}' is a reserved name (an operator, the sum or the delta)",
            name,
            0,
            len(name),
            hint="choose another name",
        )
    if name == ARGUMENT:
        raise IndexDiffError(
            f"'{ARGUMENT}' names the argument in derivatives", name, 0, len(name), hint="choose another name"
        )
    if keyword.iskeyword(name) or name in _PY_TAKEN or name in dir(builtins):
        raise IndexDiffError(
            f"'{name}' is a Python name generated code needs (a keyword, a builtin or one of its own)",
            name,
            0,
            len(name),
            hint="choose another name: generated numpy code calls the function by its name",
        )


def _check_numpy(name: str, numpy: Callable[[np.ndarray], np.ndarray]) -> None:
    """Call the implementation once on a small array: a scalar-only function (math.erf) fails here, not later."""
    probe = np.array([0.25, 0.5, 0.75])  # inside most functions' domains (log, sqrt, logit, ...)
    hint = "numpy= takes a numpy array and returns one of the same shape (np.vectorize makes a scalar function one)"
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(numpy(probe))
    except Exception as err:  # the user's function: any failure is reported with the fix
        raise ArgumentError(f"numpy= for '{name}' fails on the array [0.25, 0.5, 0.75]: {err}", hint=hint) from None
    if out.shape != probe.shape or out.dtype.kind not in "fiu":
        raise ArgumentError(
            f"numpy= for '{name}' maps an array of shape (3,) to {out.dtype} shape {out.shape}", hint=hint
        )


def _template(name: str, text: str) -> Node:
    """The derivative's text as a node in ``u``: numbers, ``u`` without indices and functions only."""
    from .parser import parse

    try:
        parsed = parse(text)
    except IndexDiffError as err:  # a parse error or a summation rule broken: the same, naming the function
        raise type(err)(f"the derivative of '{name}': {err.reason}", err.text, err.pos, err.end, err.hint) from None
    if not isinstance(parsed, Expr) or parsed.name is not None:
        raise ParseError(
            f"the derivative of '{name}' is one expression in u, not a statement",
            text,
            0,
            len(text),
            hint='e.g. derivative="1 - tanh(u)^2"',
        )
    for tensor in _tensors(parsed.node):
        where = _find(text, tensor.name)
        if tensor.name != ARGUMENT:
            raise IndexDiffError(
                f"the derivative of '{name}' uses the tensor '{tensor.name}'; it may use only u (the argument), "
                "numbers and functions",
                text,
                *where,
                hint="write a constant as a number (3.141592653589793, not pi)",
            )
        if tensor.indices:
            raise IndexDiffError(
                f"the derivative of '{name}' gives u indices; u is the argument's value at one element",
                text,
                *where,
                hint="write u without indices: the function applies element by element",
            )
    if all_indices(parsed.node):
        index = sorted(all_indices(parsed.node))[0]
        raise IndexDiffError(
            f"the derivative of '{name}' uses the index '{index}'; it is a formula in u alone",
            text,
            *_find(text, index, indexed=True),
            hint="write it with u, numbers and functions only",
        )
    return parsed.node


def _tensors(node: Node) -> Iterator[Tensor]:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            yield n
        stack.extend(children(n))


def _find(text: str, name: str, indexed: bool = False) -> tuple[int, int]:
    """Where ``name`` stands as a token in ``text`` (an index: after an underscore), for the caret."""
    letters = r"A-Za-z0-9\u0391-\u03a1\u03a3-\u03a9\u03b1-\u03c9"
    before = rf"(?<=_)[{letters}]*?" if indexed else rf"(?<![{letters}_])"
    after = "" if indexed else rf"(?:_\{{[^}}]*\}}|_[{letters}]+)?(?![{letters}(])"
    found = re.search(before + re.escape(name) + after, text)
    return (found.start(), found.end()) if found else (0, len(text))


def _substitute(node: Node, arg: Node, done: dict[int, Node]) -> Node:
    """``node`` with the argument in place of ``u``."""
    key = id(node)
    if key not in done:
        if isinstance(node, Tensor):
            done[key] = arg if node.name == ARGUMENT else node
        else:
            done[key] = rebuild(node, tuple(_substitute(c, arg, done) for c in children(node)))
    return done[key]


def _uses(spec: Function, name: str) -> bool:
    stack = [spec.derivative(Tensor(ARGUMENT, ()))]
    while stack:
        n = stack.pop()
        if isinstance(n, Func) and n.name == name:
            return True
        stack.extend(children(n))
    return False


def module_lines(nodes: list[Node]) -> list[str]:
    """Lines binding the custom functions ``nodes`` call, for a generated module: an import from the module
    that defines the numpy implementation, or, where it cannot be imported (a lambda, a function defined in a
    script), a stub that says what to assign."""
    used: dict[str, None] = {}
    stack = list(nodes)
    while stack:
        n = stack.pop()
        if isinstance(n, Func) and FUNCTIONS[n.name].custom is not None:
            used[n.name] = None
        stack.extend(children(n))
    lines: list[str] = []
    for name in sorted(used):
        spec = FUNCTIONS[name]
        where = _importable(spec.numpy)
        lines.append(f"# {name}: a custom function (ix.function); derivative {name}'(u) = {spec.custom}")
        if where is not None:
            module, qualname = where
            if "." in qualname:  # a class's static method
                owner, attribute = qualname.split(".", 1)
                lines += [f"from {module} import {owner} as _{name}_owner", "", f"{name} = _{name}_owner.{attribute}"]
            else:
                lines.append(f"from {module} import {qualname}" + (f" as {name}" if qualname != name else ""))
            lines.append("")
            continue
        lines += [
            f"def {name}(a):",
            f'    """Assign this module\'s {name} to the numpy implementation given to ix.function before calling',
            "    (it could not be imported from where it was defined):",
            f'    import this_module; this_module.{name} = <the function>."""',
            f'    raise NotImplementedError("{name}: assign its numpy implementation to this module\'s {name} first")',
            "",
            "",
        ]
    return lines


def _importable(fn: Callable[..., Any]) -> tuple[str, str] | None:
    """``(module, name)`` from which ``fn`` imports back: where it was defined, else a module-level name bound to
    it in an imported module (``erf = np.vectorize(math.erf)``); None for a lambda or a script's function."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module != "__main__" and "<" not in qualname:
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
            if found is fn:
                return module, qualname
        except (ImportError, AttributeError):
            pass
    for name in sorted(m for m in list(sys.modules) if m != "__main__" and not m.startswith("_")):
        owner = vars(sys.modules[name]) if hasattr(sys.modules[name], "__dict__") else {}
        bound = next((k for k, v in list(owner.items()) if v is fn and not k.startswith("_")), None)
        if bound is not None:
            return name, bound
    return None
