"""Mutation fuzzer: every mutated input parses or raises an IndexDiffError, quickly, never another exception.

A corpus of valid inputs (README examples, issue 7's inputs, test cases, generated expressions and programs) is
mutated: characters and tokens deleted, inserted, replaced and duplicated, two inputs spliced, operators inserted,
Unicode, huge and tiny numbers, deep nesting and long repetitions. For each mutant, ``ix.parse`` either returns
(then ``str`` round-trips, and ``ix.diff`` by each variable returns, its result printing and parsing back, or raises
an IndexDiffError) or raises an IndexDiffError; each input takes under ``LIMIT`` seconds of CPU time. A subset also
goes through the command line (``indexdiff.cli.main``): exit status 0, 1 or 2, never a traceback.

The default run is derandomized (fixed seeds, about 15 s of CPU time). A longer run with fresh seeds:
``INDEXDIFF_FUZZ=long pytest tests/test_fuzz_mutation.py`` (``INDEXDIFF_FUZZ_EXAMPLES=N`` mutants, 20000 by
default in the long run).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import time
from collections.abc import Iterator

import pytest
from cpulimit import Timeout, cpu_limit

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.expr import Program

LONG = os.environ.get("INDEXDIFF_FUZZ") == "long"
MUTANTS = int(os.environ.get("INDEXDIFF_FUZZ_EXAMPLES", "20000")) if LONG else 2000
CLI_MUTANTS = MUTANTS // 10 if LONG else 400
SEED = random.randrange(2**32) if LONG else 7
#: CPU seconds one input may take (parse, print, diff by each variable); past HARD seconds it is interrupted.
LIMIT = 2.0
HARD = 10.0
#: Mutants are cut to this many characters (a sum of about a thousand terms).
MAX_LENGTH = 20_000
#: The command line's --check and --cost evaluate the expression: shorter mutants there.
CLI_MAX_LENGTH = 2_000

CORPUS = [
    "x_i A_ij x_j",
    "W_ij x_j + b_i",
    "W1_{ij} h_j",
    "T_{i,j,k}",
    "A_{row,col} x_{col,}",
    "0.5 x_i A_ij x_j - c",
    "sigmoid(W_ij x_j + b_i)",
    "(x_i - y_i)^2",
    "u_i / v_i",
    "delta_ij x_j",
    "δ_ij x_j",
    "δ_i",
    "sum_i(log(1 + exp(-y_i X_ij w_j)))",
    "L = sum_i((A_ij x_j - b_i)^2)",
    "h_i = relu(W_ij x_j); L = h_i h_i",
    "z_bi = W_ij x_bj + c_i",
    "z_i = y_i X_ij w_j",
    "L = (z_i - t_i)^2",
    "A_ji",
    "A_ii",
    "(x_i y_i) z_i",
    "x^-0.5 + y^(1/3) - (2 x)^2",
    "exp((u_p^2)^2)",
    "a / (b c)",
    "(x_i - y_i)^2 / 2",
    "1/3 x_i",
    "f_kl = 0",
    "sum_b(x_b) + sum_b(m δ_b)",
    "sum_i(1 + δ_ki) B_ki",
    "L = sum_bd(x_bd - sum_e(x_be))",
    "a_a (A_ab + X_ac B_cd X_db) b_b",
    "δ_i δ_ij x_j",
    "A_jl δ_ji^0",
    "sum_i(step(x_i) step(y_i))",
    "P_ij = exp(S_ij) / sum_k(exp(S_ik))",
    "L = sum_b(log(sum_j(exp(z_bj))) - z_bj t_bj)",
    "tanh(sin(cos(tan(x)))) + softplus(sqrt(abs(sign(y))))",
    "z1_bi = W1_ij x_bj + b1_i\nh1_bi = relu(z1_bi)\nL = sum_bi((h1_bi - y_bi)^2)  # a comment",
    "a1 = x; a2 = a1 a1 + a1; a3 = a2 a2 + a2",
    "x_i * A_ij * x_j",
    "-(T_llk) * 1^-1",
    "B_ji * 0.1^-1",
    "F_ji = A_ij + 2.5e1 δ_ij",
    # drawn from strategies.rich_case and strategies.program
    "F_{i,m,j} = (T_rji v_s) ((u_r B_mp) * (δ_s (1.5)) * u_p)",
    "F_ij = (T_{i,p,col} * T_sji * A_{s,col} + 2 + 1e-1)^(1/3)",
    "F = (δ_jj) sum_{m,}(w_m)",
    "sigmoid((T_{s,j,i} u_{row,}) * A_{s,row} * (δ_{sm} δ_s))",
    "H_{i,} = sigmoid(δ_in A_{n,p})  # statement 0\nF_{i,} = sin(δ_ij u_j)^2  # statement 1",
    "H_{j,m,i} = T_ijm w_p; F_{i,} = δ_{i,n} (δ_{nr} (δ_r / c))",
    "-step(B_{ji}) - A_{i,j} + A_{j,i} + B_ji + sum_s(T_jsi) - u_{q} * A_{qr} * T_jir - abs(B_ij^-1)",
    "F_ij = tan(sigmoid(A_jp / A_{i,j})) / 2^-1",
]

#: Pieces inserted by mutations: operators, notation, Unicode, hostile numbers.
PIECES = [
    "+",
    "-",
    "*",
    "/",
    "^",
    "(",
    ")",
    "_",
    ",",
    "{",
    "}",
    "=",
    ";",
    "\n",
    "#",
    " ",
    "^-1",
    "^0",
    "^(1/3)",
    "δ",
    "delta",
    "sum_",
    "sum_i(",
    "exp(",
    "log",
    "Σ",
    "∂",
    "²",
    "ℝ",
    "\u03a2",
    "\ufeff",
    "\x00",
    "\t",
    "é",
    "x\u0301",
    "😀",
    "\u200b",
    "\\",
    "'",
    '"',
    "0",
    "1e-400",
    "1e400",
    "0e999999999",
    "1e-99999999",
    "9" * 400,
    "0.",
    ".5",
    "1_000",
    "0x10",
    "nan",
    "inf",
    "2^(1/10000000000)",
    "_{i,j,k}",
    "_{}",
    "_{,}",
    "x_",
    "mean_i(",
    "sum_ii(",
    "δ_ii",
    "A_iii",
    "x/(0 x)",
    "0^-1",
    "1/0",
]

TOKEN = re.compile(r"[A-Za-z\u0370-\u03ff]\w*|\d+(?:\.\d*)?(?:e-?\d+)?|\S")


def _mutate(rng: random.Random, text: str) -> str:
    kind = rng.randrange(14)
    n = len(text)
    k = rng.randrange(n + 1)
    if kind == 0 and n:
        return text[:k] + text[k + 1 :]  # delete a character
    if kind == 1:
        return text[:k] + rng.choice(PIECES) + text[k:]  # insert a piece
    if kind == 2 and n:
        return text[:k] + chr(rng.randrange(32, 0x3FF)) + text[k + 1 :]  # replace a character
    if kind == 3 and n:
        j = rng.randrange(k, n + 1)
        return text[:j] + text[k:j] + text[j:]  # duplicate a slice
    tokens = TOKEN.findall(text)
    if kind in (4, 5, 6) and tokens:
        t = rng.randrange(len(tokens))
        if kind == 4:
            del tokens[t]
        elif kind == 5:
            tokens.insert(t, tokens[t])
        else:
            tokens[t] = rng.choice(tokens)
        return rng.choice([" ", ""]).join(tokens)
    if kind == 7:
        other = rng.choice(CORPUS)
        return text[:k] + other[rng.randrange(len(other) + 1) :]  # splice two inputs
    if kind == 8:
        depth = rng.choice([10, 100, 149, 151, 400])
        return "(" * depth + text + ")" * depth  # deep nesting
    if kind == 9:
        return " + ".join([text] * rng.choice([2, 50, 500]))  # long repetition
    if kind == 10:
        return f"{text} {rng.choice(['+', '-', '*', '/', '^'])} {rng.choice(CORPUS)}"  # an operator between inputs
    if kind == 11:
        return text + rng.choice(["^", "^-1", "^0", "^0.5", "^(1/3)", "^1e999", "^-1e-400", "^" + "9" * 30])
    if kind == 12:
        return re.sub(r"\d+(\.\d+)?", lambda m: rng.choice(["0", "1e-400", "1e400", "9" * 60, "0.1", m.group()]), text)
    return "sum_i(" * rng.choice([1, 3, 60]) + text + ")" * rng.choice([0, 1, 3, 60])


def mutants(seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        text = rng.choice(CORPUS)
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = _mutate(rng, text)[:MAX_LENGTH]
        yield text


def _variables(e: ix.Expr | Program) -> list[str]:
    return sorted(e.inputs if isinstance(e, Program) else e.variables)


def exercise(text: str) -> str | None:
    """Parse, print, differentiate ``text``; a description of what went wrong, or None."""
    try:
        e = ix.parse(text)
    except ix.IndexDiffError:
        return None
    printed = str(e)
    again = ix.parse(printed)
    if again != e or str(again) != printed:
        return f"str does not round-trip: {printed!r} -> {str(again)!r}"
    for v in _variables(e)[:3]:
        try:
            d = ix.diff(e, v)
        except ix.IndexDiffError:
            continue
        if ix.parse(str(d)) != d:
            return f"d/d{v} {str(d)!r} does not parse back equal"
    return None


def _run(text: str) -> tuple[str | None, float]:
    """What went wrong (or None) and the CPU seconds taken (CPU time: other processes on the machine do not count)."""
    start = time.process_time()
    try:
        with cpu_limit(HARD):
            problem = exercise(text)
    except Timeout:
        problem = f"did not finish in {HARD} s of CPU time"
    except Exception as err:  # noqa: BLE001 - the point: anything but an IndexDiffError is a finding
        problem = f"{type(err).__name__}: {str(err)[:200]}"
    return problem, time.process_time() - start


def _show(text: str) -> str:
    return repr(text) if len(text) <= 200 else f"{text[:150]!r}... ({len(text)} characters)"


def test_mutated_inputs_parse_or_raise_index_diff_error_quickly() -> None:
    problems, slow = [], []
    for text in mutants(SEED, MUTANTS):
        problem, seconds = _run(text)
        if problem:
            problems.append(f"{problem}: {_show(text)}")
        elif seconds > LIMIT:
            slow.append(f"{seconds:.1f} s: {_show(text)}")
    assert not problems and not slow, f"seed {SEED}\n" + "\n".join(problems[:20] + slow[:20])


def test_corpus_is_valid() -> None:
    """The mutations start from inputs that parse (so the fuzzer explores near valid notation)."""
    for text in CORPUS:
        ix.parse(text)


def _cli(argv: list[str]) -> tuple[int | None, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with cpu_limit(HARD), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Timeout:
        return None, f"did not finish in {HARD} s of CPU time"
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: main must return the status
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    return code, err.getvalue()


@pytest.mark.parametrize("offset", range(4))
def test_mutated_command_lines_exit_0_1_or_2(offset: int) -> None:
    rng = random.Random(SEED + offset)
    problems = []
    options = [
        [],
        ["--format", "einsum"],
        ["--format", "python"],
        ["--format", "json"],
        ["--format", "latex"],
        ["--check"],
        ["--cost", "--dims", "i=2,j=3,k=2,b=2"],
    ]
    for text in mutants(SEED + 1000 + offset, CLI_MUTANTS // 4):
        text = text[:CLI_MAX_LENGTH]
        try:
            e = ix.parse(text)
            wrt = _variables(e)[:1]
        except ix.IndexDiffError:
            wrt = [rng.choice(["x", "A", "x,x"])]
        argv = [*(["--wrt", wrt[0]] if wrt else []), *rng.choice(options), "--", text]
        code, err = _cli(argv)
        if code not in (0, 1, 2) or "Traceback" in err:
            problems.append(f"exit {code} {err[-300:]}: {_show(' '.join(argv))}")
    assert not problems, "\n".join(problems[:20])
