"""Parser edges: an indexed name followed by '(' is an error that says what was meant, the Greek letter range has
no unassigned code point, a byte order mark is accepted, and parsing is linear in the length of the input."""

from __future__ import annotations

import numpy as np
import pytest
from counting import calls

import indexdiff as ix


def refused(text: str) -> ix.IndexDiffError:
    with pytest.raises(ix.IndexDiffError) as err:
        ix.parse(text)
    return err.value


# -- item 6: mean_i(x_i), Σ_i(x_i), A_ij(x_j) are not silently products --------------------------------------------


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("Σ_i(x_i)", "sum_i(...)"),
        ("Σ_{ij}(A_ij)", "sum_{ij}(...)"),
        ("A_ij(x_j)", "A_ij (...) or A_ij * (...)"),
        ("y_i + W_{ij}(x_j)", "W_{ij} (...)"),
        ("exp_i(x_i)", "write exp(...)"),
        ("δ_ij(x_j)", "δ_ij (...)"),
        ("inv_ij(A_ij)", "inv takes no indices"),
        ("det_{row,col}(A_{row,col})", "det takes no indices"),
    ],
)
def test_indexed_name_directly_followed_by_a_parenthesis_is_an_error_with_a_hint(text, hint):
    err = refused(text)
    assert isinstance(err, ix.ParseError) and hint in err.hint, err.hint
    name = text[err.pos : err.end]
    assert name.endswith("(") and "_" in name and text.index(name) == err.pos


def test_an_indexed_call_with_bad_indices_reports_the_indices():
    err = refused("x_1(y)")
    assert "'1' is not an index" in err.reason and err.text == "x_1(y)" and err.pos == 2


@pytest.mark.parametrize(
    ("text", "operator"),
    [("mean_i(x_i)", "mean_i(x_i)"), ("2 mean_j(A_ij)", "2 mean_j(A_ij)"), ("mean_{row,}(x_{row,})", "mean_{row,}")],
)
def test_operators_over_an_index_are_not_indexed_names(text, operator):
    assert operator in str(ix.parse(text))


@pytest.mark.parametrize("text", ["A_ij(x_j", "B_j(u_ij +)", "A_ij(x_j) = 2"])
def test_an_indexed_call_explains_a_syntax_error_after_it(text):
    err = refused(text)
    assert "not a function call" in err.reason and err.pos == 0


def test_the_n_ary_summation_sign_points_to_sum():
    err = refused("∑_i(x_i)")
    assert err.pos == 0 and "sum_i(...)" in err.hint


def test_the_hints_formulas_are_valid_and_compute_what_they_say(rng):
    u, x = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    n = np.array(3.0)
    assert np.allclose(ix.evaluate(ix.parse("sum_i(x_ij) / n"), {"x": x, "n": n}), x.mean(axis=0))
    softmax = ix.evaluate(ix.parse("p_ij = exp(u_ij) / sum_k(exp(u_ik))"), {"u": u})
    assert np.allclose(softmax, np.exp(u) / np.exp(u).sum(axis=1, keepdims=True))
    lse = ix.evaluate(ix.parse("log(sum_j(exp(u_ij)))"), {"u": u})
    assert np.allclose(lse, np.log(np.exp(u).sum(axis=1)))
    assert np.all(lse >= u.max(axis=1))
    smooth_min = ix.evaluate(ix.parse("-log(sum_j(exp(-(u_ij))))"), {"u": u})
    assert np.all(smooth_min <= u.min(axis=1))


def test_with_a_space_an_indexed_name_and_a_parenthesis_are_a_product(rng):
    A, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    assert ix.parse("A_ij (x_j)") == ix.parse("A_ij x_j") == ix.parse("A_ij * (x_j)")
    assert np.allclose(ix.evaluate(ix.parse("A_ij (x_j)"), {"A": A, "x": x}), A @ x)
    assert ix.parse("sum_i(x_i)").free == ()  # sum_i( is still the explicit sum


# -- item 5: U+03A2 (unassigned, inside Α..Ω) is not a letter ------------------------------------------------------


@pytest.mark.parametrize("text", ["\u03a2", "\u03a2_i x_i", "x_\u03a2", "A_{\u03a2,i}", "\u03a2(x)", "sum_\u03a2(x_i)"])
def test_the_unassigned_greek_code_point_is_refused(text):
    err = refused(text)
    assert err.pos in (text.index("\u03a2"), text.index("\u03a2") - 1)  # at it, or at the '_' it should follow


def test_the_greek_letters_around_it_are_accepted(rng):
    e = ix.parse("Ρ_αβ Σ_β + Ω_α")
    assert e.variables == {"Ρ": 2, "Σ": 1, "Ω": 1} and e.free == ("α",)
    P, S, W = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=2)
    assert np.allclose(ix.evaluate(e, {"Ρ": P, "Σ": S, "Ω": W}), P @ S + W)


# -- item 7: a UTF-8 byte order mark -------------------------------------------------------------------------------


def test_a_leading_byte_order_mark_is_accepted():
    assert ix.parse("\ufeffx_i A_ij x_j") == ix.parse("x_i A_ij x_j")
    program = ix.parse("\ufeffh_i = W_ij x_j\nL = h_i h_i")
    assert isinstance(program, ix.Program) and program.names == ("h", "L")
    err = refused("\ufeffx_i + ")  # carets still point into the text as given
    assert err.pos == len("\ufeffx_i +") - 1
    assert "\ufeff" not in str(err)
    refused("x_i \ufeff+ y_i")  # elsewhere it is not white space


# -- item 8: parsing is linear --------------------------------------------------------------------------------------


@pytest.mark.parametrize("join", [" + ", " * "])
def test_parsing_long_sums_and_products_is_linear(join):
    def text(n: int) -> str:
        return join.join(f"a{k}_i" if join == " + " else f"a{k}" for k in range(n))

    ix.parse("x")
    small, large = text(1000), text(4000)
    ratio = calls(lambda: ix.parse(large)) / calls(lambda: ix.parse(small))
    assert ratio < 4.5  # linear: 4x the terms, 4x the Python calls (quadratic would be 16x)


def test_a_sum_of_ten_thousand_terms_parses_quickly():
    text = " + ".join(f"a{k}_i" for k in range(9999)) + " - x_i"
    ix.parse("x")
    e = ix.parse(text)  # about 0.3 s (benchmarks/scaling.py measures it)
    assert len(e.variables) == 10000 and len(e.node.terms) == 10000
    assert str(e).endswith("a9998_i - x_i")


@pytest.mark.parametrize("text", ["", "   ", "# only a comment", ";;"])
def test_empty_input_is_an_error_with_a_caret(text):
    err = refused(text)
    assert err.reason == "empty input" and err.pos == 0 and "^" in str(err)
