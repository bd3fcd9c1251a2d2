"""Mutation fuzzer for matrix notation: every mutated input to ``ix.parse_matrix`` returns an Expr or raises an
IndexDiffError, quickly, never another exception; an Expr prints as index notation that parses back equal, and
differentiates (its derivative parsing back equal) or raises an IndexDiffError. The same mutants go through
``ix.parse`` (whose errors try the matrix translation for their hint) and a subset through ``indexdiff --matrix``.

Derandomized by default; ``INDEXDIFF_FUZZ=long`` uses a fresh seed and more mutants (``INDEXDIFF_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import time
from collections.abc import Iterator

from cpulimit import Timeout, cpu_limit
from test_matrix_input import CASES

import indexdiff as ix
from indexdiff.cli import main

LONG = os.environ.get("INDEXDIFF_FUZZ") == "long"
MUTANTS = int(os.environ.get("INDEXDIFF_FUZZ_EXAMPLES", "20000")) if LONG else 400
CLI_MUTANTS = MUTANTS // 10 if LONG else 60
SEED = random.randrange(2**32) if LONG else 11
#: CPU seconds one input may take; past HARD seconds it is interrupted.
LIMIT = 2.0
HARD = 10.0
MAX_LENGTH = 10_000
#: Longer inputs are parsed and printed, not differentiated (a product's derivative grows with its length squared).
DIFF_LENGTH = 2_000

CORPUS = [text for text, *_ in CASES] + [
    "‖A x - b‖₂ + ‖x‖",
    "x^T A^T A x",
    "(A B)⁻ᵀ C",
    "softmax(W2 relu(W1 x + b1) + b2)",
    "-sum(t ∘ log(softmax(z))) + c norm2(w)^2",
    "L = (1/2) norm2(X w - y)^2",
    "Xᵀ diag(sigmoid(X w) ∘ (1 - sigmoid(X w))) X",
    "dz1ᵀ x",
    "2 1 cᵀ",
    "x' A x  # a comment",
]

PIECES = [
    *"'ᵀ∘/^@*()-−+_,=‖\n# 1xAcδ",
    ".T",
    "^T",
    "⁻¹",
    "⁻ᵀ",
    "²",
    "‖₂",
    ".*",
    "./",
    ".^",
    "1ᵀ",
    "vector(1)",
    "eye",
    "tr(",
    "det(",
    "logdet(",
    "inv(",
    "diag(",
    "sum(",
    "norm2(",
    "softmax(",
    "logsumexp(",
    "exp(",
    "sum_i(",
    "x_i",
    "L = ",
    "0",
    "1e400",
    "1e-400",
    "9" * 400,
    "^-1",
    "^0",
    "^(1/3)",
    "^(1/0)",
    "^1e999",
    "😀",
    "\x00",
    "\ufeff",
    "Σ",
    "λ",
]

TOKEN = re.compile(r"[A-Za-z\u0370-\u03ff]\w*|\d+(?:\.\d*)?(?:e-?\d+)?|\S")


def _mutate(rng: random.Random, text: str) -> str:
    kind = rng.randrange(11)
    n = len(text)
    k = rng.randrange(n + 1)
    if kind == 0 and n:
        return text[:k] + text[k + 1 :]
    if kind == 1:
        return text[:k] + rng.choice(PIECES) + text[k:]
    if kind == 2 and n:
        return text[:k] + chr(rng.randrange(32, 0x3FF)) + text[k + 1 :]
    if kind == 3 and n:
        j = rng.randrange(k, n + 1)
        return text[:j] + text[k:j] + text[j:]
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
        return text[:k] + other[rng.randrange(len(other) + 1) :]
    if kind == 8:
        depth = rng.choice([10, 100, 149, 151, 400])
        opening, closing = rng.choice([("(", ")"), ("tr(", ")"), ("‖", "‖"), ("exp(", ")")])
        return opening * depth + text + closing * depth
    if kind == 9:  # long sums; long products (whose derivatives have n terms of n factors) shorter
        if rng.random() < 0.5:
            return " + ".join([text] * rng.choice([2, 50, 500]))
        return rng.choice([" ", " ∘ ", "'"]).join([text] * rng.choice([2, 8]))
    return f"{text} {rng.choice(['+', '-', '*', '/', '∘', './', '^', ''])} {rng.choice(CORPUS)}"


def mutants(seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        text = rng.choice(CORPUS)
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = _mutate(rng, text)[:MAX_LENGTH]
        yield text


def exercise(text: str) -> str | None:
    """Parse as matrix and as index notation, print, differentiate; what went wrong, or None."""
    with contextlib.suppress(ix.IndexDiffError):
        ix.parse(text)
    try:
        e = ix.parse_matrix(text)
    except ix.IndexDiffError as err:
        return None if err.text is not None and "^" in str(err) or err.pos is None else f"no caret: {err}"
    printed = str(e)
    if ix.parse(printed) != e:
        return f"the translation {printed!r} does not parse back equal"
    for v in sorted(e.variables)[: 2 if len(text) < DIFF_LENGTH else 0]:
        try:
            d = ix.diff(e, v)
        except ix.IndexDiffError:
            continue
        if ix.parse(str(d)) != d:
            return f"d/d{v} {str(d)!r} does not parse back equal"
    return None


def _run(text: str) -> tuple[str | None, float]:
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


def test_corpus_parses() -> None:
    for text in CORPUS[-10:]:
        ix.parse_matrix(text)


def test_mutated_matrix_inputs_parse_or_raise_index_diff_error_quickly() -> None:
    problems, slow = [], []
    for text in mutants(SEED, MUTANTS):
        problem, seconds = _run(text)
        if problem:
            problems.append(f"{problem}: {_show(text)}")
        elif seconds > LIMIT:
            slow.append(f"{seconds:.1f} s: {_show(text)}")
    assert not problems and not slow, f"seed {SEED}\n" + "\n".join(problems[:20] + slow[:20])


def test_mutated_matrix_command_lines_exit_0_1_or_2() -> None:
    rng = random.Random(SEED)
    problems = []
    for text in mutants(SEED + 1, CLI_MUTANTS):
        argv = ["--matrix", *rng.choice([[], ["--wrt", "x"], ["--wrt", "A", "--format", "json"], ["--check"]])]
        out, err = io.StringIO(), io.StringIO()
        try:
            with cpu_limit(HARD), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*argv, "--", text[:2000]])
        except BaseException as exc:  # noqa: BLE001 - SystemExit included: main must return the status
            code, err = None, io.StringIO(f"{type(exc).__name__}: {exc}")
        if code not in (0, 1, 2) or "Traceback" in err.getvalue():
            problems.append(f"exit {code} {err.getvalue()[-300:]}: {_show(text)}")
    assert not problems, "\n".join(problems[:20])


#: Inputs the long runs found problems with (fixed), run every time.
KNOWN = [
    "ceye+eye",  # eye in a sum whose shapes a second pass infers
    "‖A x - b‖² + c eye + A + x.T A x",
    " + ".join(["softmax(z)"] * 300) + "\n z",  # a second line after a long first: the caret on it
    "x.^2.^2",  # the number 2. took the dot of .^
]


def test_known_cases() -> None:
    for text in KNOWN:
        assert _run(text)[0] is None, text
