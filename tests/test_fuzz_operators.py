"""Operator fuzzer: random expressions and programs mixing the operators (softmax_j, logsumexp_j, mean_j, max_j,
min_j, ismax_j, ismin_j, inv, det, logdet) with the rest of the notation, through every route.

Generator (``op_strategies.op_expression``): products and sums with Einstein indices, element-wise functions,
powers, explicit sums, left-hand sides, operators over one or two indices nested in each other and in the rest of the
notation, the naive spellings (``exp(u) / sum_k(exp(u'))``, ``log(sum_j(exp(u)))``, ``sum_j(x) / δ_jj``), and
matrix functions of arguments that are well conditioned with a positive determinant for any data the checks use:
``X_nr X_nc + c δ_rc`` (c ≥ 1, plus ``u_r u_c`` sometimes), ``δ_rc + 0.2 tanh(E_rc)`` and ``δ_rc + 0.5
softmax_c(E_rc)`` (strictly diagonally dominant at lengths ≤ 3), their products, inverses, transposes and positive
multiples. The leaves are ``strategies.expression`` (the rest of the notation).

Oracles: an independent numpy evaluator of the parsed tree (``op_reference.reference``: softmax, log-sum-exp, mean,
max, min, the indicators, inverse, determinant and log-determinant by hand: Gauss-Jordan elimination, no
numpy.linalg) checks ``ix.evaluate`` on the value and on the first and second derivatives; then
``fuzz_routes.check_expression`` / ``check_program`` send each case through every route (print -> parse, compile in
float64 and float32, central differences of first and second derivatives, diff of diff, the einsum code and the
generated module, ``ix.grad`` programs). Mutated operator inputs must parse or raise an IndexDiffError with a caret,
and the command line must exit 0, 1 or 2.

The default run is derandomized (about 20 s); ``INDEXDIFF_FUZZ=long`` runs fresh seeds and more cases
(``INDEXDIFF_FUZZ_EXAMPLES=N`` per test, 1000 by default). The minimized cases it found run every time
(``KNOWN``, ``KNOWN_PROGRAMS``).
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from cpulimit import Timeout, cpu_limit
from fuzz_routes import LONG, Case, check_expression, check_program, draw_wrt, fuzz_settings, used_inputs
from hypothesis import given, settings
from hypothesis import strategies as st
from op_reference import agrees, reference
from op_strategies import op_case, op_program

import indexdiff as ix
from indexdiff.check import random_arrays, sizes_for
from indexdiff.cli import main
from indexdiff.expr import Expr, Program

SEED = random.randrange(2**32) if LONG else 8

# -- the driver ----------------------------------------------------------------------------------------------------


def _settings(examples: int) -> settings:
    return fuzz_settings(examples, 1000)


_wrt = draw_wrt


def check_reference(text: str, wrt: tuple[str, str] | tuple[()]) -> None:
    """ix.evaluate of the value, ∂/∂wrt[0] and ∂²/∂wrt[0]∂wrt[1] against the independent ``reference``."""
    e = ix.parse(text)
    arrays = random_arrays(e, {i: 2 + n % 2 for i, n in sizes_for(e).items()})
    dims = None
    try:
        want = ix.evaluate(e, arrays)
    except ix.ShapeError:  # a length only a δ carries: every index has length 3 (as fuzz_routes does)
        arrays = random_arrays(e, dict.fromkeys(sizes_for(e), 3))
        dims = Case(arrays, 3).dims(e)
        want = ix.evaluate(e, arrays, dims)
    if not np.all(np.isfinite(want)) or np.max(np.abs(want), initial=0) > 1e6:
        return
    derived = [e] + ([ix.diff(e, wrt[0]), ix.diff(e, *wrt)] if wrt else [])
    for what, x in zip(["value", f"d/d{wrt[:1]}", f"d/d{wrt}"], derived):
        sizes = None if dims is None else Case(arrays, 3).dims(x)
        got = ix.evaluate(x, arrays, sizes)
        mine = reference(x, arrays, {**dict(zip(x.free, np.shape(got))), **(sizes or {})})
        assert agrees(got, mine), f"{what} of {text!r}: ix.evaluate of {str(x)!r}\n{got}\n!= reference\n{mine}"


def check_program_reference(text: str) -> None:
    p = ix.parse(text)
    rng = np.random.default_rng(0)
    arrays = {n: rng.uniform(0.5, 1.5, size=(3,) * r) for n, r in sorted(p.inputs.items())}
    try:
        want = ix.evaluate(p, arrays)
    except ix.ShapeError:
        return  # a length only a δ carries: fuzz_routes.check_program covers it with dims
    mine = reference(p, arrays)
    assert agrees(want, mine), f"program {text!r}: ix.evaluate {want} != reference {mine}"


@_settings(35)
@given(op_case(), st.data())
def test_operator_expressions_agree_on_every_route(text: str, data: st.DataObject) -> None:
    wrt = _wrt(data, ix.parse(text).variables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_reference(text, wrt)
        check_expression(text, wrt)


@_settings(10)
@given(op_program(), st.data())
def test_operator_programs_agree_on_every_route(text: str, data: st.DataObject) -> None:
    wrt = _wrt(data, used_inputs(ix.parse(text)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_program_reference(text)
        check_program(text, wrt)


#: Inputs the fuzzer found (minimized), with the variables to differentiate by; each runs on every route.
KNOWN = [
    # an operator whose argument loses its index in simplification (simplify._pass keeps a witness now)
    ("softmax_j(a + 0 u_j)", ("a", "u")),
    ("logsumexp_j(a + u_j - u_j)", ("a", "a")),
    ("ismax_j(a + 0 u_j)", ("a", "u")),
    # ... and whose argument simplifies to the number 0 (the witness was multiplied into a zero)
    ("u_q softmax_q(A_iq - A_iq)", ("A", "u")),
    ("F_i = softmax_i(softmax_i(v_i / 3 - v_i / 3))", ("v", "v")),
    ("sum_q(softmax_q(0 A_iq))", ("A", "A")),
    # a mean over two indices of a product of deltas kept one delta outside the mean (identities._mean_of_product)
    ("mean_bi(x_bi)", ("x", "x")),
    ("mean_bi(x_bi) u_k", ("x", "u")),
    ("min_j(x_ij) / mean_bi(x_bi)", ("x", "x")),
    ("softmax_j(z_ij) - mean_bi(x_bi)", ("x", "z")),
    ("mean_ij(x_i y_j)", ("x", "y")),
]


@pytest.mark.parametrize(("text", "wrt"), KNOWN)
def test_known_cases_agree_on_every_route(text: str, wrt: tuple[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_reference(text, wrt)
        check_expression(text, wrt)


KNOWN_PROGRAMS = [
    # an operator over two indices renamed in a derivative program printed its indices unsorted (F3)
    ("G = mean_q(logsumexp_ms(T_sqm))\nL = G", ("T", "T")),
    ("P_ij = softmax_j(S_ij)\nL = sum_ij(P_ij B_ij) + logdet(S_ik S_jk + δ_ij)", ("S", "S")),
]


@pytest.mark.parametrize(("text", "wrt"), KNOWN_PROGRAMS)
def test_known_programs_agree_on_every_route(text: str, wrt: tuple[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_program_reference(text)
        check_program(text, wrt)


@pytest.mark.parametrize("text", ["inv(A_ij)", "det(A_ij)", "logdet(A_ij)", "x_i inv(A_ij) x_j"])
def test_float16_matrix_functions(text: str) -> None:
    """numpy.linalg refuses float16 (a TypeError leaked): it is computed in float32 and the result is float16."""
    arrays = {"A": np.array([[2.0, 0.5], [0.5, 3.0]]), "x": np.array([1.0, 2.0])}
    e = ix.parse(text)
    want = reference(e, arrays)
    low = {n: arrays[n].astype(np.float16) for n in e.variables}
    for got in (ix.evaluate(e, low), ix.compile(e)(**low), ix.evaluate(ix.diff(e, "A"), low)):
        assert np.asarray(got).dtype == np.float16
    assert agrees(ix.evaluate(e, low), want, rtol=2e-3)
    assert agrees(ix.compile(e)(**low), want, rtol=2e-3)


def test_reference_against_closed_forms() -> None:
    """The independent evaluator itself, on cases with known values."""
    rng = np.random.default_rng(0)
    z, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 3)) + 3 * np.eye(3)
    assert agrees(reference(ix.parse("softmax_j(z_ij)"), {"z": z}), np.exp(z) / np.exp(z).sum(1, keepdims=True))
    assert agrees(reference(ix.parse("logsumexp_i(z_ij)"), {"z": z}), np.log(np.exp(z).sum(0)))
    assert agrees(
        reference(ix.parse("F_i = mean_j(z_ij) - max_j(z_ij) min_k(z_ik)"), {"z": z}), z.mean(1) - z.max(1) * z.min(1)
    )
    assert agrees(reference(ix.parse("f_ji = inv(C_ij)"), {"C": c}), np.linalg.inv(c).T)
    assert agrees(reference(ix.parse("det(C_ij)"), {"C": c}), np.array(np.linalg.det(c)))
    assert agrees(reference(ix.parse("logdet(C_ik C_jk)"), {"C": c}), np.array(np.linalg.slogdet(c @ c.T)[1]))
    assert agrees(reference(ix.parse("ismax_j(x_j)"), {"x": np.array([1.0, 3, 3])}), np.array([0, 0.5, 0.5]))
    assert agrees(reference(ix.parse("sum_j(δ_jj) + δ_ii"), {}, {"i": 2, "j": 5}), np.array(7.0))


# -- mutated inputs and the command line ---------------------------------------------------------------------------

CORPUS = [
    "softmax_j(z_ij)",
    "logsumexp_j(z_ij)",
    "mean_bi(x_bi)",
    "max_j(x_ij) - min_j(x_ij)",
    "softmax_jk(T_ijk)",
    "ismax_j(x_j) + ismin_j(x_j)",
    "x_i inv(A_ij) x_j",
    "inv(X_ni X_nj + 2 δ_ij)",
    "logdet(X_ni X_nj + lam δ_ij)",
    "det(A_ik B_kj)",
    "f_ji = inv(A_ij)",
    "P_ij = softmax_j(S_ij)",
    "L = 0.5 logdet(C_ij) + 0.5 r_i inv(C_ij) r_j",
    "S_ij = Q_ia K_ja\nP_ij = softmax_j(S_ij)\nO_ia = P_ij V_ja\nL = sum_ia(O_ia G_ia)",
    "h_bi = x_bi - mean_j(x_bj); L = sum_bi(h_bi^2)",
    "logsumexp_j(softmax_j(A_ij))",
    "mean_j(softmax_j(A_ij)) u_i",
    "exp(u_ij) / sum_k(exp(u_ik))",
    "log(sum_j(exp(u_ij)))",
    "sum_j(x_ij) / δ_jj",
    "log(softmax_j(z_ij))",
    "det(inv(A_ij)) + logdet(inv(A_ij))",
    "inv(inv(A_ij))",
    "sum_i(max_j(A_ij x_j))",
    "tanh(mean_j(W_ij x_j)) + sigmoid(logsumexp_k(B_ik))",
    "softmax_j(x_j y_j)",
    "det(δ_ij + 0.2 tanh(A_ij))^2",
]
OPERATOR_PIECES = [
    "softmax_j(",
    "logsumexp_",
    "mean_jj(",
    "max_(",
    "min_j",
    "ismax_j(",
    "inv(",
    "det(",
    "logdet(",
    "inv_ij(",
    "softmax",
    "det",
    ")",
    "(",
    "_j",
    "_{j}",
    "_{,}",
    ",",
    "δ_ij",
    "+",
    "-",
    "*",
    "/",
    "^-1",
    "^0",
    " ",
    "sum_j(",
    "mean_j (",
    "Σ_j(",
    "1e400",
    "0",
    "'",
    "\n",
    ";",
    "=",
    "f_ij =",
]
TOKEN = re.compile(r"[A-Za-z\u0370-\u03ff]\w*(?:\{[^}]*\})?|\d+(?:\.\d*)?(?:e-?\d+)?|\S")
#: CPU seconds one mutant may take before it counts as a hang (generous: the machine is shared).
HARD = 20.0


def _mutate(rng: random.Random, text: str) -> str:
    tokens = TOKEN.findall(text)
    kind = rng.randrange(7)
    t = rng.randrange(len(tokens))
    if kind == 0:
        del tokens[t]
    elif kind == 1:
        tokens.insert(t, tokens[t])
    elif kind == 2:
        s = rng.randrange(len(tokens))
        tokens[t], tokens[s] = tokens[s], tokens[t]
    elif kind == 3:
        tokens[t] = rng.choice(tokens + OPERATOR_PIECES)
    elif kind == 4:
        tokens.insert(t, rng.choice(OPERATOR_PIECES))
    elif kind == 5:
        k = rng.randrange(len(text) + 1)
        return text[:k] + text[k + 1 :]
    else:
        return f"{text} {rng.choice(['+', '*', '-', '/'])} {rng.choice(CORPUS)}"
    return rng.choice([" ", ""]).join(tokens) if kind != 4 else " ".join(tokens)


def mutants(seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        text = rng.choice(CORPUS)
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = _mutate(rng, text)
        yield text


def _variables(x: Expr | Program) -> list[str]:
    return sorted(x.inputs if isinstance(x, Program) else x.variables)


def exercise(text: str) -> str | None:
    """Parse, print, differentiate: what went wrong, or None. A parse error must point at the input (a caret)."""
    try:
        e = ix.parse(text)
    except ix.IndexDiffError as err:
        return None if "^" in str(err) else f"no caret in {str(err)!r}"
    printed = str(e)
    if ix.parse(printed) != e:
        return f"{printed!r} does not parse back equal"
    for v in _variables(e)[:2]:
        try:
            d = ix.diff(e, v)
        except ix.IndexDiffError:
            continue
        if ix.parse(str(d)) != d:
            return f"d/d{v} {str(d)!r} does not parse back equal"
    return None


def _problem(text: str) -> str | None:
    try:
        with cpu_limit(HARD):
            return exercise(text)
    except Timeout:
        return f"did not finish in {HARD} s of CPU time"
    except Exception as err:  # noqa: BLE001 - anything but an IndexDiffError is a finding
        return f"{type(err).__name__}: {str(err)[:200]}"


def test_corpus_is_valid() -> None:
    for text in CORPUS:
        ix.parse(text)


def test_mutated_operator_inputs_parse_or_raise_index_diff_error() -> None:
    problems = []
    for text in mutants(SEED, 3000 if LONG else 600):
        problem = _problem(text)
        if problem:
            problems.append(f"{problem}: {text!r}")
    assert not problems, f"seed {SEED}\n" + "\n".join(problems[:20])


def _cli(argv: list[str]) -> tuple[int | None, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with cpu_limit(HARD), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Timeout:
        return None, f"did not finish in {HARD} s of CPU time"
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: main returns the status
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    return code, out.getvalue() + err.getvalue()


CLI_OPTIONS = [
    [],
    ["--format", "einsum"],
    ["--format", "python"],
    ["--format", "json"],
    ["--format", "latex"],
    ["--check"],
    ["--cost"],
]


def test_command_line_on_operator_inputs_and_mutants() -> None:
    """Valid operator inputs with every output option exit 0 (1 only for a failed --check); mutants exit 0, 1 or 2;
    never a traceback."""
    problems = []
    rng = random.Random(SEED)
    valid = [t for t in CORPUS if "\n" not in t and ";" not in t][:12]
    runs = [(t, o, True) for t in valid for o in rng.sample(CLI_OPTIONS, 2)]
    runs += [(t, rng.choice(CLI_OPTIONS), False) for t in mutants(SEED + 1, 200 if LONG else 40)]
    for text, options, ok in runs:
        try:
            e = ix.parse(text)
            wrt = _variables(e)[:1] or ["x"]
            if options == ["--cost"] and isinstance(e, Expr):  # a length for each index of the expression
                options = ["--cost", "--dims", ",".join(f"{i}={2 + n % 2}" for i, n in sizes_for(e).items())]
        except ix.IndexDiffError:
            wrt = [rng.choice(["x", "A", "x,x"])]
        argv = ["--wrt", wrt[0], *options, "--", text]
        code, output = _cli(argv)
        allowed = (0,) if ok and "--check" not in options else (0, 1, 2)
        if code not in allowed or "Traceback" in output:
            problems.append(f"exit {code}: {output[-300:]!r}: {argv}")
    assert not problems, "\n".join(problems[:20])
