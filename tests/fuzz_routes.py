"""Every route from index notation to numbers, checked against the reference evaluator (for the fuzzers).

Routes: ``ix.evaluate`` with and without ``dims`` (the reference), ``ix.compile`` in float64 and float32, the lines
of ``ix.codegen(e, ..., format="einsum")`` run with ``eval``, the module of ``ix.codegen(e, ..., format="python")``
run with ``exec``, print -> parse, and for programs ``ix.grad``. Derivatives are checked against central
differences of the reference evaluator (elements where the function is not smooth at the data, a kink of
step/relu/abs/sign within the step, are left out: there central differences say nothing).

Sizes: when the arrays alone fix every index's length (the reference evaluator needs no ``dims``), every route is
called without sizes. Otherwise (a sum over an index only a delta carries) every index has length 3 and each route
gets it: ``dims=`` for evaluate and compile, ``n_<index>`` for the generated code.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

import indexdiff as ix
from indexdiff.check import random_arrays, sizes_for
from indexdiff.codegen import python_names
from indexdiff.errors import ShapeError
from indexdiff.expr import Expr, Program
from indexdiff.names import all_indices

#: Agreement between exact routes (the same formula, evaluated in a different order).
RTOL = 1e-9
#: float32 compiled against the float64 reference, relative to the largest value.
RTOL32 = 2e-3
_STEP = 1e-5


#: ``INDEXDIFF_FUZZ=long``: fresh seeds, many more cases (``INDEXDIFF_FUZZ_EXAMPLES=N``), failures shrunk.
LONG = os.environ.get("INDEXDIFF_FUZZ") == "long"


def fuzz_settings(examples: int, long_examples: int) -> settings:
    """Hypothesis settings of the fuzzers: ``examples`` derandomized cases by default, ``long_examples`` (or
    ``INDEXDIFF_FUZZ_EXAMPLES``) fresh ones in the long run."""
    if LONG:
        examples = int(os.environ.get("INDEXDIFF_FUZZ_EXAMPLES", str(long_examples)))
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not LONG,
        database=None,
        print_blob=True,
        # Shrinking a failure costs minutes at ~0.1 s per example: the default run reports the first failure as
        # found; the long run shrinks.
        phases=list(Phase) if LONG else [Phase.explicit, Phase.reuse, Phase.generate],
    )


def draw_wrt(data: st.DataObject, variables: Mapping[str, int]) -> tuple[str, str] | tuple[()]:
    """Two variables (maybe the same) to differentiate by, in turn; none when there is none."""
    names = sorted(variables)
    if not names:
        return ()
    return data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))


class RouteError(AssertionError):
    """A route disagreed with the reference or crashed: the input, the route and what happened."""


def fail(text: str, route: str, what: str) -> RouteError:
    return RouteError(f"{route}: {what}\n  input: {text!r}")


def close(got: Any, want: np.ndarray, rtol: float = RTOL) -> bool:
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if got.shape != want.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    return bool(np.all(np.isfinite(got)) and np.all(np.abs(got - want) <= rtol * (scale + np.abs(want))))


def letters(x: Expr | Program) -> set[str]:
    parts = x.statements if isinstance(x, Program) else (x,)
    return set().union(*(all_indices(s.node) | set(s.free) for s in parts))


def inputs(x: Expr | Program, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: arrays[n] for n in (x.inputs if isinstance(x, Program) else x.variables)}


def central(f: Callable[[dict], np.ndarray], arrays: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of ``f`` by ``arrays[name]`` (step h/2), and where steps h and h/2 agree (smooth)."""
    x = np.asarray(arrays[name], dtype=np.float64)
    base = np.asarray(f(arrays))
    est = [np.empty(base.shape + x.shape) for _ in range(2)]
    for idx in np.ndindex(*x.shape):
        for k, h in enumerate((_STEP, _STEP / 2)):
            h *= max(1.0, abs(float(x[idx])))
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            est[k][(Ellipsis, *idx)] = (f({**arrays, name: xp}) - f({**arrays, name: xm})) / (2 * h)
    smooth = np.abs(est[0] - est[1]) <= _tolerance(est[0], base)
    return est[1], smooth


def _tolerance(numeric: np.ndarray, value: np.ndarray) -> np.ndarray:
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    noise = 200 * np.finfo(np.float64).eps * float(np.max(np.abs(value), initial=0.0)) / _STEP
    return 1e-6 * scale + 1e-5 * np.abs(numeric) + noise


def check_against_differences(
    text: str, label: str, symbolic: np.ndarray, f: Callable[[dict], np.ndarray], arrays: dict, name: str
) -> None:
    numeric, smooth = central(f, arrays, name)
    if symbolic.shape != numeric.shape:
        raise fail(text, label, f"shape {symbolic.shape}, central differences {numeric.shape}")
    err = np.where(smooth, np.abs(symbolic - numeric), 0.0)
    tol = _tolerance(numeric, f(arrays))
    if not np.all(np.isfinite(symbolic[smooth])) or np.any(err > tol):
        worst = tuple(int(k) for k in np.unravel_index(int(np.argmax(err - tol)), err.shape)) if err.size else ()
        raise fail(text, label, f"at {worst}: {symbolic[worst]!r}, central differences {numeric[worst]!r}")


def call(route: str, text: str, thunk: Callable[[], Any]) -> Any:
    """Run one route: any exception is a failure of that route."""
    try:
        return thunk()
    except RouteError:
        raise
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise fail(text, route, f"raised {type(err).__name__}: {first}") from err


def round_trip(text: str, label: str, x: Expr | Program) -> Expr | Program:
    printed = str(x)
    again = call(f"{label} print -> parse", text, lambda: ix.parse(printed))
    if again != x:
        raise fail(text, f"{label} print -> parse", f"{printed!r} parses to an unequal expression {again}")
    if str(again) != printed:
        raise fail(text, f"{label} print -> parse", f"{printed!r} reprints as {str(again)!r}")
    return again


class Case:
    """Arrays and, when the arrays do not fix every length, sizes for each route."""

    def __init__(self, arrays: dict[str, np.ndarray], size: int | None) -> None:
        self.arrays = arrays
        self.size = size  # None: the arrays fix every length; else every index has this length

    def dims(self, x: Expr | Program) -> dict[str, int] | None:
        """A length for every index ``x`` prints (dims name indices as the expression printed them)."""
        if self.size is None:
            return None
        return dict.fromkeys(letters(x) | letters(ix.parse(str(x))), self.size)

    def parameters(self, module: dict[str, Any]) -> dict[str, int]:
        sizes = module.get("SIZES", {})
        return {} if self.size is None else dict.fromkeys(sizes, self.size)

    def function(self, x: Expr | Program) -> Callable[[dict], np.ndarray]:
        """``x`` as a function of the arrays for central differences: compiled (plans are reused across the many
        calls; compile agrees with evaluate at the data, which is checked separately), else the reference."""
        reference = lambda a: ix.evaluate(x, a, self.dims(x))  # noqa: E731
        try:
            f = ix.compile(x, dims=self.dims(x))
            mine = inputs(x, self.arrays)
            if not close(f(**mine), reference(self.arrays)):
                return reference
        except Exception:  # noqa: BLE001 - compile's own failures are reported by its route
            return reference
        return lambda a: f(**{n: a[n] for n in mine})

    def namespace(self, x: Expr | Program) -> dict[str, Any]:
        from indexdiff.einsumcode import size_parameter

        sizes = {} if self.size is None else {size_parameter(i): self.size for i in letters(x)}
        return {"np": np, **self.arrays, **sizes}


def check_expr_routes(text: str, label: str, x: Expr, case: Case, want: np.ndarray) -> None:
    """compile (float64, float32) and print -> parse -> evaluate of one expression."""
    mine = inputs(x, case.arrays)
    got = call(f"{label} compile", text, lambda: ix.compile(x, dims=case.dims(x))(**mine))
    if not close(got, want):
        raise fail(text, f"{label} compile", f"{got} != {want}")
    if mine and float(np.max(np.abs(want), initial=0.0)) < 1e3:
        low = {n: a.astype(np.float32) for n, a in mine.items()}
        got32 = call(f"{label} compile float32", text, lambda: ix.compile(x, dims=case.dims(x))(**low))
        if np.asarray(got32).dtype != np.float32:
            raise fail(text, f"{label} compile float32", f"dtype {np.asarray(got32).dtype}")
        if not close(got32, want, RTOL32):
            raise fail(text, f"{label} compile float32", f"{got32} != {want}")
    again = round_trip(text, label, x)
    # Printed text keeps no lengths for indices no tensor carries (a derivative's δ_ik): give the output's, or
    # every index of the printed text its length.
    dims = dict.fromkeys(letters(again), case.size) if case.size else dict(zip(again.free, want.shape))
    got = call(f"{label} reparsed evaluate", text, lambda: ix.evaluate(again, mine, dims))
    if not close(got, want):
        raise fail(text, f"{label} reparsed evaluate", f"{got} != {want}")


def check_generated_code(text: str, e: Expr, chains: list[str], case: Case, wants: list[np.ndarray]) -> None:
    """The einsum lines (eval) and the generated module (exec, then its evaluate) against the reference."""
    code = call("codegen einsum", text, lambda: ix.codegen(e, *chains, format="einsum"))
    lines = code.split("\n")
    if len(lines) != len(wants):
        raise fail(text, "codegen einsum", f"{len(lines)} lines for {len(wants)} expressions:\n{code}")
    namespace = case.namespace(e)
    for k, (line, want) in enumerate(zip(lines, wants)):
        namespace.update(case.namespace(ix.diff(e, *chains[k - 1].split(","))) if k and case.size else {})
        got = call("einsum code", text, lambda line=line: eval(line, namespace))  # noqa: S307 - generated code
        if not close(got, want):
            raise fail(text, "einsum code", f"{line}\n  gives {got} != {want}")
    module_text = call("codegen python", text, lambda: ix.codegen(e, *chains, format="python"))
    module: dict[str, Any] = {"__name__": "generated"}
    call("generated module import", text, lambda: exec(module_text, module))  # noqa: S102 - generated code
    args = [case.arrays[n] for n in e.variables]
    got = call("generated module evaluate", text, lambda: module["evaluate"](*args, **case.parameters(module)))
    got = got if chains else (got,)
    for g, want, what in zip(got, wants, ["value", *chains]):
        if not close(g, want):
            raise fail(text, f"generated module evaluate ({what})", f"{g} != {want}")


def _small(value: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(value)) and np.max(np.abs(value), initial=0) < 1e6)


def check_expression(text: str, wrt: tuple[str, str] | tuple[()]) -> None:
    """Every route for ``text``, its first derivative by wrt[0] and second by wrt[0], wrt[1]."""
    e = call("parse", text, lambda: ix.parse(text))
    round_trip(text, "value", e)
    # Small lengths, 2 and 3, different for indices of different axes (so transposed axes show).
    dims = {i: 2 + n % 2 for i, n in sizes_for(e).items()}
    arrays = random_arrays(e, dims)
    try:
        want = ix.evaluate(e, arrays)
        case = Case(arrays, None)
    except ShapeError:
        case = Case(random_arrays(e, dict.fromkeys(dims, 3)), 3)
        want = call("evaluate with dims", text, lambda: ix.evaluate(e, case.arrays, case.dims(e)))
    if not _small(want):
        return  # e.g. exp(exp(ΣA²)): outside float64's comfortable range
    check_expr_routes(text, "value", e, case, want)
    if not wrt:
        check_generated_code(text, e, [], case, [want])
        return
    v1, v2 = wrt
    arrays = case.arrays
    d1 = call(f"diff by {v1}", text, lambda: ix.diff(e, v1))
    d12 = call(f"diff by {v1},{v2}", text, lambda: ix.diff(e, v1, v2))
    w1 = call(f"evaluate d/d{v1}", text, lambda: ix.evaluate(d1, arrays, case.dims(d1)))
    check_against_differences(text, f"d/d{v1}", w1, case.function(e), arrays, v1)
    w12 = call(f"evaluate d/d{v1}/d{v2}", text, lambda: ix.evaluate(d12, arrays, case.dims(d12)))
    stepwise = call("diff of diff", text, lambda: ix.diff(d1, v2))
    got = call("evaluate diff of diff", text, lambda: ix.evaluate(stepwise, arrays, case.dims(stepwise)))
    if not close(got, w12):
        raise fail(text, f"diff(diff(e, {v1}), {v2}) against diff(e, {v1}, {v2})", f"{got} != {w12}")
    if _small(w1):
        check_against_differences(text, f"d/d{v1}/d{v2}", w12, case.function(d1), arrays, v2)
    check_expr_routes(text, f"d/d{v1}", d1, case, w1)
    check_expr_routes(text, f"d/d{v1}/d{v2}", d12, case, w12)
    dims_all = None if case.size is None else {**case.dims(e), **case.dims(d1), **case.dims(d12)}
    together = call(
        "compile value and derivatives", text, lambda: ix.compile(e, d1, d12, dims=dims_all)(**inputs(e, arrays))
    )
    for got, w, what in zip(together, (want, w1, w12), ("value", "first", "second")):
        if not close(got, w):
            raise fail(text, f"compile(e, d1, d12) {what}", f"{got} != {w}")
    check_generated_code(text, e, [v1, f"{v1},{v2}"], case, [want, w1, w12])


def used_inputs(p: Program) -> dict[str, int]:
    """The inputs the program's last statement depends on (directly or through earlier statements)."""
    defined = {s.name: s for s in p.statements}
    out: dict[str, int] = {}
    todo = [p.statements[-1]]
    while todo:
        for name, rank in todo.pop().variables.items():
            if name in defined:
                todo.append(defined.pop(name))
            elif name not in {s.name for s in p.statements}:
                out[name] = rank
    return out


def compiled(p: Program, case: Case) -> Callable[..., Any]:
    """``ix.compile(p)`` called with the arrays it takes (it refuses inputs the program's output does not use)."""
    f = ix.compile(p, dims=case.dims(p))
    return lambda **arrays: f(**{n: arrays[n] for n in f.inputs})


def check_program_module(text: str, p: Program, v: str, case: Case, want: np.ndarray, grad: np.ndarray) -> None:
    """The generated module of a scalar program: forward(...) is the loss, gradients(...) the loss and d/dv."""
    module_text = call("program codegen python", text, lambda: ix.codegen(p, v, format="python"))
    module: dict[str, Any] = {"__name__": "generated"}
    call("program module import", text, lambda: exec(module_text, module))  # noqa: S102 - generated code
    names = python_names(p.inputs)
    # The module takes the inputs of the statements the loss uses.
    taken = inspect.signature(module["forward"]).parameters
    args = {names[n]: a for n, a in case.arrays.items() if n in names and names[n] in taken}
    sizes = case.parameters(module)
    value = call("program module forward", text, lambda: module["forward"](**args, **sizes))
    both = call("program module gradients", text, lambda: module["gradients"](**args, **sizes))
    if not (close(value, want) and close(both[0], want) and close(both[1], grad)):
        raise fail(text, "program module", f"forward {value}, gradients {both} != ({want}, {grad})")


def check_program(text: str, wrt: tuple[str, str] | tuple[()]) -> None:
    """A program: print -> parse, evaluate, compile, diff against central differences, grad, einsum code.

    Every axis has length 3 (a program's letters name different axes in different statements).
    """
    p = call("parse", text, lambda: ix.parse(text))
    round_trip(text, "program", p)
    rng = np.random.default_rng(0)
    arrays = {n: rng.uniform(0.5, 1.5, size=(3,) * r) for n, r in sorted(p.inputs.items())}
    try:
        want = ix.evaluate(p, arrays)
        case = Case(arrays, None)
    except ShapeError:
        case = Case(arrays, 3)  # a length only a delta carries
        want = call("program evaluate with dims", text, lambda: ix.evaluate(p, arrays, case.dims(p)))
    if not _small(want):
        return
    got = call("program compile", text, lambda: compiled(p, case)(**arrays))
    if not close(got, want):
        raise fail(text, "program compile", f"{got} != {want}")
    if not wrt:
        return
    v1, v2 = wrt
    d1 = call(f"program diff by {v1}", text, lambda: ix.diff(p, v1))
    w1 = call(f"program evaluate d/d{v1}", text, lambda: ix.evaluate(d1, arrays, case.dims(d1)))
    check_against_differences(text, f"program d/d{v1}", w1, case.function(p), arrays, v1)
    round_trip(text, f"program d/d{v1}", d1)
    got = call(f"program compile d/d{v1}", text, lambda: compiled(d1, case)(**arrays))
    if not close(got, w1):
        raise fail(text, f"program compile d/d{v1}", f"{got} != {w1}")
    if _small(w1):
        d12 = call(f"program diff by {v1},{v2}", text, lambda: ix.diff(p, v1, v2))
        w12 = call(f"program evaluate d/d{v1}/d{v2}", text, lambda: ix.evaluate(d12, arrays, case.dims(d12)))
        check_against_differences(text, f"program d/d{v1}/d{v2}", w12, case.function(d1), arrays, v2)
    if not p.statements[-1].free:
        g = call(f"grad by {v1}", text, lambda: ix.grad(p, wrt=[v1]))
        round_trip(text, f"grad by {v1}", g)
        got = call(f"compile grad by {v1}", text, lambda: compiled(g, case)(**arrays))
        if not (isinstance(got, tuple) and len(got) == 2 and close(got[0], want) and close(got[1], w1)):
            raise fail(text, f"compile grad by {v1}", f"{got} != ({want}, {w1})")
        check_program_module(text, p, v1, case, want, w1)
    code = call("program codegen einsum", text, lambda: ix.codegen(p, v1, format="einsum"))
    namespace = {**case.namespace(p), **case.namespace(d1)}
    call("program einsum code", text, lambda: exec(code, namespace))  # noqa: S102 - generated code
    value, derivative = p.statements[-1].name, code.strip().split("\n")[-1].split("=")[0].strip()
    for name, w in ((value, want), (derivative, w1)):
        if not close(namespace.get(name), w):
            raise fail(text, "program einsum code", f"{name} = {namespace.get(name)} != {w}\n{code}")
