"""Every class of bad input: an IndexDiffError whose message names the problem and whose caret points at it."""

from __future__ import annotations

import random

import pytest

import indexdiff as ix
from indexdiff.errors import DiffError, IndexRuleError, ParseError


def caret(err: ix.IndexDiffError) -> tuple[str, int, int]:
    """The quoted line, the caret's column in it, and the caret's width."""
    lines = str(err).splitlines()
    k = next(i for i, line in enumerate(lines) if set(line.strip()) == {"^"})
    quoted, marks = lines[k - 1], lines[k]
    prefix = len(quoted) - len(quoted.lstrip()) if not quoted.lstrip().startswith("line") else quoted.index(": ") + 2
    return quoted[prefix:], marks.index("^") - prefix, marks.count("^")


def fails(text: str, kind: type = ix.IndexDiffError) -> ix.IndexDiffError:
    with pytest.raises(kind) as info:
        ix.parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("x_i +", "ends too early", 4),
        ("x_i A_ij *", "ends too early", 9),
        ("(x_i + y_i", "'(' is never closed", 0),
        ("x_i + y_i)", "')' has no matching '('", 9),
        ("exp((x_i)", "'(' is never closed", 3),
        ("x_i @ y_i", "unexpected character '@'", 4),
        ("x_i $", "unexpected character '$'", 4),
        ("x_ + y", "'_' must be followed by indices", 1),
        ("x_1", "'1' is not an index", 2),
        ("A_{ij", "unclosed brace", 2),
        ("a = b = c", "unexpected '='", 6),
    ],
)
def test_syntax_errors(text, reason, column):
    err = fails(text, ParseError)
    assert reason in str(err)
    line, col, _ = caret(err)
    assert line == text and col == column
    assert "hint:" in str(err)


@pytest.mark.parametrize("text", ["", "   ", "# only a comment", ";;"])
def test_empty_input(text):
    err = fails(text, ParseError)
    assert "empty input" in str(err) and "x_i A_ij x_j" in str(err)


def test_mismatched_free_indices_in_a_sum():
    err = fails("x_i + y_j", IndexRuleError)
    assert "'y_j' has {j} but 'x_i' has {i}" in str(err)
    assert caret(err)[1:] == (6, 3)
    assert "f_ij = x_i + y_j" in str(err)


def test_index_three_times_in_one_product():
    err = fails("x_i A_ii", IndexRuleError)
    assert "index 'i' occurs 3 times" in str(err)
    assert caret(err) == ("x_i A_ii", 0, 8)


def test_left_hand_side_index_missing_on_the_right():
    err = fails("z_bi = W_ij x_j", IndexRuleError)
    assert "index 'b' of the left-hand side does not occur on the right" in str(err)
    assert caret(err)[1:] == (2, 1)


def test_left_hand_side_repeats_an_index():
    err = fails("z_ii = A_ii", ParseError)
    assert "repeats index 'i'" in str(err)
    assert caret(err)[1] == 3


def test_unknown_function():
    err = fails("sigmod(x_i)", ParseError)
    assert "unknown function 'sigmod'" in str(err) and "did you mean sigmoid?" in str(err)
    assert caret(err)[1:] == (0, 6)


def test_function_name_used_as_a_tensor():
    err = fails("exp (x)", ParseError)
    assert "'exp' is a function" in str(err) and "no space" in str(err)


def test_tensor_used_with_different_numbers_of_indices():
    err = fails("x_i + A_ij x_ij", IndexRuleError)
    assert "'x' is used with 2 indices here but with 1 index at column 1" in str(err)
    assert caret(err)[1:] == (11, 4)


def test_non_numeric_exponent():
    err = fails("x_i^y", ParseError)
    assert "exponent must be a number" in str(err)
    assert caret(err)[1:] == (4, 1)
    assert "exp(y log(x))" in str(err)


def test_explicit_sum_errors():
    err = fails("z_i = sum_i(x_i)", IndexRuleError)
    assert "already bound" in str(err)
    err = fails("sum_j(x_i)", IndexRuleError)
    assert "'j' is not a free index of the body" in str(err)
    err = fails("sum_ii(x_i)", ParseError)
    assert "repeats index 'i'" in str(err)


def test_delta_needs_one_or_two_indices():
    assert "takes one or two indices" in str(fails("δ_ijk", ParseError))
    assert "not 0" in str(fails("delta + 1", ParseError))


def test_defined_in_terms_of_itself():
    assert "defined in terms of itself" in str(fails("x_i = x_i + 1", IndexRuleError))


def test_division_by_zero():
    assert "division by zero" in str(fails("x_i / 0", IndexRuleError))


def test_program_errors_name_the_line():
    err = fails("h_i = W_ij x_j\nL = h_i g_i\ng_i = x_i", IndexRuleError)
    assert "'g' is used before its definition" in str(err)
    assert "line 2: L = h_i g_i" in str(err)
    err = fails("h_i = x_i\nh_i = 2 x_i", IndexRuleError)
    assert "'h' is defined twice" in str(err) and "line 2" in str(err)
    err = fails("h_i = x_i\nL = h_ij", IndexRuleError)
    assert "'h' is used with 2 indices" in str(err)
    err = fails("h_i = x_i\nh_i h_i", ParseError)
    assert "must all be statements" in str(err)


def test_differentiating_by_a_name_the_expression_lacks():
    with pytest.raises(DiffError) as info:
        ix.diff(ix.parse("x_i A_ij x_j"), "y")
    assert "does not contain it" in str(info.value) and "A, x" in str(info.value)
    assert caret(info.value) == ("y", 0, 1)


def test_differentiating_with_wrong_indices():
    e = ix.parse("W_ij x_j + b_i")
    with pytest.raises(DiffError, match="'W' has 2 indices but 1 were given"):
        ix.diff(e, "W_k")
    with pytest.raises(DiffError, match="already an output index"):
        ix.diff(e, "b_i")
    with pytest.raises(DiffError, match="given twice"):
        ix.diff(e, "W_kk")
    with pytest.raises(DiffError, match="no variable"):
        ix.diff(e)


def test_deep_nesting_is_a_clear_error_not_a_recursion_error():
    for text in ["(" * 5000 + "x" + ")" * 5000, "-" * 5000 + "x", "exp(" * 3000 + "x" + ")" * 3000]:
        err = fails(text, ParseError)
        assert "nested more than" in str(err)


def test_long_flat_input_is_fine():
    e = ix.parse(" + ".join(["x_i"] * 3000))
    assert e.free == ("i",)
    assert str(ix.diff(e, "x")) == "3000 δ_ik"


def test_moderate_nesting_works():
    e = ix.parse("sin(" * 40 + "x" + ")" * 40)
    assert ix.check(e, "x").ok


VALID = [
    "x_i A_ij x_j",
    "L = sum_i((A_ij x_j - b_i)^2)",
    "sigmoid(W_ij x_j + b_i)",
    "z_bi = W_ij x_bj + c_i",
    "sum_i(log(1 + exp(-y_i X_ij w_j)))",
    "0.5 x_i A_ij x_j - c",
    "h_i = relu(W_ij x_j); L = h_i h_i",
]
ALPHABET = list("xyzAWijk_{},()+-*/^=;. 0123456789#δ") + ["exp(", "sum_i(", "\n", "1e", "σ"]


def test_fuzz_arbitrary_text_raises_only_index_diff_error():
    rnd = random.Random(7)
    for _ in range(3000):
        text = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 25)))
        try:
            ix.parse(text)
        except ix.IndexDiffError as err:
            assert str(err)  # renders
            assert err.text == text


def test_fuzz_mutated_valid_expressions_raise_only_index_diff_error():
    rnd = random.Random(11)
    for _ in range(3000):
        chars = list(rnd.choice(VALID))
        for _ in range(rnd.randint(1, 3)):
            k = rnd.randrange(len(chars) + 1)
            op = rnd.random()
            if op < 0.4 and chars:
                del chars[min(k, len(chars) - 1)]
            elif op < 0.8:
                chars.insert(k, rnd.choice(ALPHABET))
            elif chars:
                chars[min(k, len(chars) - 1)] = rnd.choice(ALPHABET)
        text = "".join(chars)
        try:
            result = ix.parse(text)
        except ix.IndexDiffError:
            continue
        if isinstance(result, ix.Expr) and result.variables:
            name = sorted(result.variables)[0]
            assert ix.parse(str(result)) == result, text
            ix.diff(result, name)


def test_a_long_line_is_quoted_around_the_caret_and_the_message_stays_short():
    text = " + ".join(f"x{k}" for k in range(3000)) + " + y_i @ z_j"
    err = fails(text, ParseError)
    line, col, width = caret(err)
    assert line.startswith("...") and line[col] == "@" and width == 1
    text = " + ".join(f"x{k}" for k in range(3000)) + " + y_i + z_j"
    err = fails(text, IndexRuleError)
    line, col, width = caret(err)
    assert line[col : col + width] == "z_j" and len(str(err)) < 1000
