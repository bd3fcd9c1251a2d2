"""Matrix notation in (ix.parse_matrix, indexdiff --matrix): translations evaluated against numpy formulas written
independently, shape and syntax errors with their carets and fixes, index input that looks like matrix notation,
and the command line."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.larkcache import grammar_text

N = 4
RNG = np.random.default_rng(5)
#: One set of arrays for every case: square matrices near the identity (invertible, positive determinant),
#: a rectangular X (6 x N) with its targets, vectors and scalars.
DATA = {
    "A": np.eye(N) + 0.3 * RNG.uniform(-1, 1, (N, N)),
    "B": np.eye(N) + 0.3 * RNG.uniform(-1, 1, (N, N)),
    "C": RNG.uniform(-1, 1, (N, N)),
    "S": (lambda m: m @ m.T + N * np.eye(N))(RNG.uniform(-1, 1, (N, N))),
    "X": RNG.uniform(-1, 1, (6, N)),
    "W1": RNG.uniform(-1, 1, (5, N)),
    "W2": RNG.uniform(-1, 1, (3, 5)),
    "Z": RNG.uniform(-2, 2, (5, 3)),
    "x": RNG.uniform(-1, 1, N),
    "v": RNG.uniform(-1, 1, N),
    "w": RNG.uniform(-1, 1, N),
    "z": RNG.uniform(0.5, 1.5, N),
    "u": RNG.uniform(0.5, 1.5, N),
    "y": RNG.integers(0, 2, 6) * 2.0 - 1,
    "t": RNG.dirichlet(np.ones(N)),
    "b": RNG.uniform(-1, 1, N),
    "b1": RNG.uniform(-1, 1, 5),
    "b2": RNG.uniform(-1, 1, 3),
    "c": 0.7,
    "a": -1.3,
}


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _softmax_rows(m):
    e = np.exp(m - m.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _logsumexp(m, axis=-1):
    top = m.max(axis=axis, keepdims=True)
    return np.log(np.exp(m - top).sum(axis=axis)) + np.squeeze(top, axis)


A, B, C, S, X, x, v, w, z, u, y, t, b, c = (DATA[k] for k in "ABCSXxvwzuytbc")
W1, W2, b1, b2 = (DATA[k] for k in ("W1", "W2", "b1", "b2"))
inv = np.linalg.inv

#: (matrix notation, shapes, the value by numpy, the expected index notation or None)
CASES = [
    ("x' A x", None, lambda: x @ A @ x, "x_i A_ij x_j"),
    ("xᵀ A x", None, lambda: x @ A @ x, "x_i A_ij x_j"),
    ("x.T A x", None, lambda: x @ A @ x, "x_i A_ij x_j"),
    ("x^T*A*x", None, lambda: x @ A @ x, "x_i A_ij x_j"),
    ("A x", None, lambda: A @ x, "A_ij x_j"),
    ("A B", None, lambda: A @ B, "A_ik B_kj"),
    ("Aᵀ B x", None, lambda: A.T @ B @ x, None),
    ("x' A", None, lambda: x @ A, None),
    ("x vᵀ", None, lambda: np.outer(x, v), "x_i v_j"),
    ("x' v w'", None, lambda: (x @ v) * w, None),
    ("norm2(A x - b)^2", None, lambda: np.sum((A @ x - b) ** 2), "sum_i((A_ij x_j - b_i)^2)"),
    ("‖A x - b‖²", None, lambda: np.sum((A @ x - b) ** 2), None),
    ("‖A x - b‖₂", None, lambda: np.linalg.norm(A @ x - b), None),
    ("norm2(C)", None, lambda: np.linalg.norm(C), None),
    ("norm2(X w - y)^2 + c norm2(w)^2", None, lambda: np.sum((X @ w - y) ** 2) + c * w @ w, None),
    ("tr(A' B)", None, lambda: np.trace(A.T @ B), "A_ji B_ji"),
    ("tr(A)", None, lambda: np.trace(A), "A_ii"),
    ("logdet(S)", None, lambda: np.linalg.slogdet(S)[1], "logdet(S_ij)"),
    ("det(A)^0.5", None, lambda: np.linalg.det(A) ** 0.5, None),
    ("sum(exp(X w))", None, lambda: np.exp(X @ w).sum(), "sum_i(exp(X_ij w_j))"),
    ("sum(C)", None, lambda: C.sum(), None),
    ("A⁻¹", None, lambda: inv(A), "inv(A_ij)"),
    ("inv(A) x", None, lambda: inv(A) @ x, None),
    ("A⁻ᵀ", None, lambda: inv(A).T, None),
    ("A^-1 B", None, lambda: inv(A) @ B, None),
    ("tr(inv(A))", None, lambda: np.trace(inv(A)), None),
    ("x' S⁻¹ x", None, lambda: x @ inv(S) @ x, None),
    ("A^2", None, lambda: A @ A, "A_ik A_kj"),
    ("A^-2 x", None, lambda: inv(A) @ inv(A) @ x, None),
    ("diag(A B)", None, lambda: np.diag(A @ B), None),
    ("diag(v)", None, lambda: np.diag(v), None),
    ("Xᵀ diag(y) X", None, lambda: X.T @ np.diag(y) @ X, "sum_k(X_ki y_k X_kj)"),
    ("A diag(v)", None, lambda: A @ np.diag(v), None),
    ("diag(u) diag(v) A", None, lambda: np.diag(u) @ np.diag(v) @ A, None),
    ("tr(diag(v))", None, lambda: v.sum(), None),
    ("softmax(Z)", None, lambda: _softmax_rows(DATA["Z"]), "softmax_j(Z_ij)"),
    ("softmax(Zᵀ)ᵀ", None, lambda: _softmax_rows(DATA["Z"].T).T, None),
    ("softmax(z)", None, lambda: _softmax_rows(z), None),
    ("diag(softmax(A))", None, lambda: np.diag(_softmax_rows(A)), None),
    ("logsumexp(Z)", None, lambda: _logsumexp(DATA["Z"]), "logsumexp_j(Z_ij)"),
    ("logsumexp(z)", None, lambda: _logsumexp(z), None),
    ("A 1", None, lambda: A.sum(axis=1), "A_ij δ_j"),
    ("Aᵀ 1", None, lambda: A.sum(axis=0), None),
    ("1ᵀ A", None, lambda: A.sum(axis=0), None),
    ("1 xᵀ + A", None, lambda: np.outer(np.ones(N), x) + A, None),
    ("1ᵀ x", None, lambda: x.sum(), None),
    ("x ∘ v", None, lambda: x * v, "f_i = x_i v_i"),
    ("x .* v", None, lambda: x * v, None),
    ("x ./ z", None, lambda: x / z, None),
    ("1 ./ z", None, lambda: 1 / z, None),
    ("A.^2", None, lambda: A**2, None),
    ("x.^2.^3", None, lambda: x**6, None),
    ("2./z", None, lambda: 2 / z, None),
    ("1^T x", None, lambda: x.sum(), "δ_i x_i"),
    ("(A x) ∘ v ./ z", None, lambda: (A @ x) * v / z, None),
    ("A x ∘ B v", None, lambda: (A @ x) * (B @ v), None),
    ("x / c", None, lambda: x / c, None),
    ("A x / det(A)", None, lambda: A @ x / np.linalg.det(A), None),
    ("(1/2) x' x", None, lambda: 0.5 * x @ x, None),
    ("x' A x / 2", None, lambda: x @ A @ x / 2, None),
    ("2 Aᵀ (A x - b)", None, lambda: 2 * A.T @ (A @ x - b), "2 A_ji (A_jk x_k - b_j)"),
    ("2Aᵀ(A x − b)", None, lambda: 2 * A.T @ (A @ x - b), None),
    ("A(x - b)", None, lambda: A @ (x - b), None),
    ("W1(x - b)", None, lambda: W1 @ (x - b), None),
    ("Xᵀ (sigmoid(X w) - y)", None, lambda: X.T @ (_sigmoid(X @ w) - y), None),
    ("(A + Aᵀ) x", None, lambda: (A + A.T) @ x, "(A_ij + A_ji) x_j"),
    ("A + c", {"c": "scalar"}, lambda: A + c, None),
    ("A + c", None, lambda: A + DATA["c_matrix"], "A_ij + c_ij"),
    ("c eye + A", None, lambda: c * np.eye(N) + A, None),
    ("(Xᵀ X + c eye)⁻¹ Xᵀ y", None, lambda: inv(X.T @ X + c * np.eye(N)) @ X.T @ y, None),
    ("1 - sigmoid(X w)", None, lambda: 1 - _sigmoid(X @ w), None),
    ("x + 1", None, lambda: x + 1, None),
    ("-x' A x", None, lambda: -(x @ A @ x), None),
    ("a^2 c", None, lambda: DATA["a"] ** 2 * c, None),
    ("c²", None, lambda: c**2, None),
    ("sum(log(1 + exp(-y ∘ (X w))))", None, lambda: np.log1p(np.exp(-y * (X @ w))).sum(), None),
    ("-sum(t ∘ log(softmax(z)))", None, lambda: -(t * np.log(_softmax_rows(z))).sum(), None),
    (
        "sigmoid(W2 relu(W1 x + b1) + b2)",
        None,
        lambda: _sigmoid(DATA["W2"] @ np.maximum(DATA["W1"] @ x + DATA["b1"], 0) + DATA["b2"]),
        None,
    ),
    ("x' M x", {"M": "matrix"}, lambda: x @ DATA["M"] @ x, None),
    ("b' x", {"b": "vector"}, lambda: b @ x, "b_i x_i"),
    ("lam x' x", {"lam": "scalar"}, lambda: DATA["lam"] * x @ x, None),
    ("tr(x)", {"x": 2}, lambda: np.trace(DATA["xm"]), None),
    ("L = x' A x", None, lambda: x @ A @ x, "L = x_i A_ij x_j"),
]
DATA["M"] = DATA["B"]
DATA["c_matrix"] = DATA["C"]
DATA["lam"] = 0.25
DATA["xm"] = DATA["C"]


def _arrays(e: ix.Expr, shapes) -> dict:
    out = {}
    for name in e.variables:
        if name == "x" and shapes and shapes.get("x") == 2:
            out[name] = DATA["xm"]
        elif name == "c" and e.variables["c"] == 2:
            out[name] = DATA["c_matrix"]
        else:
            out[name] = DATA[name]
    return out


@pytest.mark.parametrize(("text", "shapes", "formula", "index"), CASES, ids=[c[0] for c in CASES])
def test_translation_evaluates_to_the_numpy_formula(text, shapes, formula, index):
    e = ix.parse_matrix(text, shapes=shapes)
    value = ix.evaluate(e, _arrays(e, shapes))
    expected = formula()
    assert np.shape(value) == np.shape(expected)
    np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-12)
    if index is not None:
        assert str(e) == index
    assert ix.parse(str(e)) == e  # the translation is index notation that parses back to the same expression


def test_there_are_enough_cases():
    assert len(CASES) >= 70


@pytest.mark.parametrize(
    ("text", "wrt", "formula"),
    [
        ("x' A x", "x", lambda: (A + A.T) @ x),
        ("x' A x", "A", lambda: np.outer(x, x)),
        ("norm2(A x - b)^2", "x", lambda: 2 * A.T @ (A @ x - b)),
        ("tr(A' B)", "A", lambda: B),
        ("logdet(S)", "S", lambda: inv(S).T),
        ("sum(exp(X w))", "w", lambda: X.T @ np.exp(X @ w)),
        ("sum(log(1 + exp(-y ∘ (X w))))", "w", lambda: X.T @ (-y * _sigmoid(-y * (X @ w)))),
    ],
)
def test_derivatives_of_translations_match_closed_forms(text, wrt, formula):
    e = ix.parse_matrix(text)
    g = ix.diff(e, wrt)
    np.testing.assert_allclose(ix.evaluate(g, _arrays(e, None)), formula(), rtol=1e-9, atol=1e-12)
    assert ix.check(e, wrt).ok


def test_names_take_shapes_from_their_first_letter_or_from_shapes():
    assert ix.parse_matrix("a x + B y").variables == {"a": 0, "x": 1, "B": 2, "y": 1}
    assert ix.parse_matrix("λ Σ").variables == {"λ": 0, "Σ": 2}
    assert ix.parse_matrix("x y", shapes={"x": "matrix", "y": 2}).free == ("i", "j")
    assert ix.parse_matrix("W x", shapes={"x": "scalar"}).variables == {"W": 2, "x": 0}
    # an undeclared a-g name as a term of a vector sum is a vector (in A x - b, b is a vector) ...
    assert ix.parse_matrix("A x - b").variables["b"] == 1
    assert ix.parse_matrix("d + eye + 2 a").variables == {"d": 2, "a": 0}
    # ... and a scalar where declared so (added to every entry)
    e = ix.parse_matrix("A x - b", shapes={"b": "scalar"})
    assert e.variables["b"] == 0
    np.testing.assert_allclose(ix.evaluate(e, {"A": A, "x": x, "b": 0.5}), A @ x - 0.5)


def test_index_names_avoid_tensor_names():
    e = ix.parse_matrix("i' A j", shapes={"i": "vector", "j": "vector"})
    assert str(e) == "i_k A_kl j_l"
    np.testing.assert_allclose(ix.evaluate(e, {"i": x, "A": A, "j": v}), x @ A @ v)


def test_ones_and_identity_sizes_come_from_context():
    np.testing.assert_allclose(ix.evaluate(ix.parse_matrix("vector(1)"), {}, dims={"i": 3}), np.ones(3))
    np.testing.assert_allclose(ix.evaluate(ix.parse_matrix("vector(2) ∘ x"), {"x": x}), 2 * x)
    np.testing.assert_allclose(ix.evaluate(ix.parse_matrix("eye x"), {"x": x}), x)
    np.testing.assert_allclose(ix.evaluate(ix.parse_matrix("1 1ᵀ + A"), {"A": A}), 1 + A)


def test_numbers_multiply_exactly_within_range():
    assert str(ix.parse_matrix("1e300 1e300 1e-300 x")) == "1e300 x_i"
    assert str(ix.parse_matrix("x ./ 4 ∘ 2")) == "0.5 x_i"


def test_long_inputs_parse_in_linear_time():
    e = ix.parse_matrix(" + ".join(f"x' A{k} x" for k in range(1000)))
    assert len(e.variables) == 1001
    e = ix.parse_matrix(" ".join(["A"] * 500) + " x")
    assert e.free == ("i",)


def _error(text, shapes=None):
    with pytest.raises(ix.IndexDiffError) as info:
        ix.parse_matrix(text, shapes=shapes)
    return info.value


@pytest.mark.parametrize(
    ("text", "shapes", "kind", "reason", "hint", "caret"),
    [
        ("x x", None, ix.ShapeError, "'x' is a column vector and 'x' is a column vector", "xᵀ x or x xᵀ", "x x"),
        ("x A", None, ix.ShapeError, "'A' is a matrix", "did you mean xᵀ A?", "x A"),
        ("x' A x x", None, ix.ShapeError, "cannot multiply 'x' A x' by 'x'", "x' A xᵀ x", "x' A x x"),
        ("A xᵀ", None, ix.ShapeError, "'xᵀ' is a row vector", "did you mean A x?", "A xᵀ"),
        ("x' y'", None, ix.ShapeError, "row vector", "did you mean x' y?", "x' y'"),
        ("A x", {"x": "matrix", "A": "vector"}, ix.ShapeError, "'A' is a column vector", "Aᵀ x", "A x"),
        ("A + x", None, ix.ShapeError, "'A' is a matrix and 'x' is a column vector", "x 1ᵀ", "x"),
        ("x + yᵀ", None, ix.ShapeError, "different shapes", "did you mean x + y?", "yᵀ"),
        ("A x - b", {"x": "matrix", "b": "vector"}, ix.ShapeError, "'A x' is a matrix", "b 1ᵀ", "b"),
        ("A ∘ x", None, ix.ShapeError, "Hadamard product", "x 1ᵀ", "A ∘ x"),
        ("x ./ A", None, ix.ShapeError, "element-wise division", "", "x ./ A"),
        ("x / y", None, ix.ShapeError, "'/' divides by a scalar", "./", "y"),
        ("x^2", None, ix.ShapeError, "a power of a column vector", "x.^2", "x^2"),
        ("x⁻¹", None, ix.ShapeError, "a power of a column vector", "1 ./ x", "x⁻¹"),
        ("A^(1/2)", None, ix.ShapeError, "matrix power", "A.^(1/2)", "A^(1/2)"),
        ("det(x)", None, ix.ShapeError, "det(...) needs a matrix", "square matrix", "x"),
        ("tr(x)", None, ix.ShapeError, "tr(...) needs a matrix", "sum(...)", "x"),
        ("diag(c)", None, ix.ShapeError, "diag(...) needs a vector or a matrix", "diag", "c"),
        ("softmax(c)", None, ix.ShapeError, "softmax(...) needs a vector", "each row", "c"),
        ("vector(x)", None, ix.ShapeError, "vector(...) takes a scalar", "vector(1)", "x"),
        ("1/2 x", None, ix.ParseError, "ambiguous", "(1/2) x or 1 / (2 x)", "1/2 x"),
        ("x ./ 2 y", None, ix.ParseError, "ambiguous", "x ./ (2 y)", "x ./ 2 y"),
        ("x_i A_ij x_j", None, ix.ParseError, "names have no indices", "ix.parse", "_"),
        ("(A x", None, ix.ParseError, "'(' is never closed", "')'", "("),
        ("A x)", None, ix.ParseError, "')' has no matching '('", "'('", ")"),
        ("‖x", None, ix.ParseError, "'‖' is never closed", "‖", "‖"),
        ("A x +", None, ix.ParseError, "ends too early", "complete", "+"),
        ("foo(x)", None, ix.ParseError, "unknown function 'foo'", "foo (...)", "foo"),
        ("sigmod(X w)", None, ix.ParseError, "unknown function", "did you mean sigmoid?", "sigmod"),
        ("mean(x)", None, ix.ParseError, "not a function of matrix notation", "functions:", "mean"),
        ("eye(3)", None, ix.ParseError, "not a function", "eye", "eye"),
        ("tr x", None, ix.ParseError, "'tr' is a function", "tr(...)", "tr"),
        ("Ax - b", None, ix.ParseError, "'Ax' is read as one name", "A x", "Ax"),
        ("A x = b", None, ix.ParseError, "unexpected '='", "no equations", "="),
        ("x = x' x", None, ix.ParseError, "defined in terms of itself", "new name", "x"),
        ("x' A x\ny", None, ix.ParseError, "one expression per input", "one expression", "y"),
        ("x' A x +\ny", None, ix.ParseError, "the line ends too early", "complete", "+"),
        ("A x ∘ -y", None, ix.ParseError, "unexpected '-'", "(-y)", "-"),
        ("x^y", None, ix.ParseError, "exponent must be a number", "A^T", "y"),
        ("x^2^3", None, ix.ParseError, "a power of a power", "(c^2)^3", "x^2^3"),
        ("0^-1", None, ix.ShapeError, "division by zero", "nonzero", "0"),
        ("x ./ 0", None, ix.ParseError, "division by zero", "nonzero", "0"),
        ("x, y", None, ix.ParseError, "unexpected ','", "one argument", ","),
        ("1e300 1e300 x", None, ix.ParseError, "out of range", "1e300", "1e300 1e300 x"),
        ("x ∘ 1e300 ∘ 1e300", None, ix.ParseError, "out of range", "rescale", "x ∘ 1e300 ∘ 1e300"),
        ("1e400 x", None, ix.ParseError, "out of range", "1e300", "1e400"),
        ("x $ y", None, ix.ParseError, "unexpected character '$'", "transposes", "$"),
        ("", None, ix.ParseError, "empty input", "x' A x", ""),
        ("   # only a comment", None, ix.ParseError, "empty input", "x' A x", " "),
    ],
)
def test_errors_quote_the_input_point_at_the_place_and_say_how_to_fix_it(text, shapes, kind, reason, hint, caret):
    err = _error(text, shapes)
    assert type(err) is kind
    assert reason in err.reason
    assert hint in (err.hint or "")
    assert err.text == text and err.pos is not None
    end = err.end if err.end is not None else err.pos + 1
    assert text[err.pos : end] == caret or (not text and err.pos == 0)
    assert "^" in str(err)


def test_shape_errors_show_both_shapes_and_the_caret():
    message = str(_error("x x"))
    assert message.splitlines()[1:3] == ["  x x", "  ^^^"]
    assert "column vector" in message.splitlines()[0]


@pytest.mark.parametrize("value", [3, ["x"], ("x", "vector")])
def test_shapes_must_be_a_mapping(value):
    with pytest.raises(ix.ArgumentError, match="shapes"):
        ix.parse_matrix("x", shapes=value)


@pytest.mark.parametrize(
    ("shapes", "match"),
    [({"x": "tensor"}, "the shape 'tensor'"), ({"x": -1}, "the shape -1"), ({"x": True}, "True"), ({"tr": 1}, "'tr'")],
)
def test_bad_shapes_are_argument_errors(shapes, match):
    with pytest.raises(ix.ArgumentError, match=match):
        ix.parse_matrix("x", shapes=shapes)


def test_names_of_three_or_more_indices_are_declared_but_not_usable():
    assert str(ix.parse_matrix("x' x", shapes={"T": 3, "x": 1})) == "x_i x_i"
    err = _error("T x", {"T": 3})
    assert type(err) is ix.ShapeError and "three or more indices" in err.reason and (err.pos, err.end) == (0, 1)


def test_a_non_string_is_a_parse_error():
    with pytest.raises(ix.ParseError, match="expected a string of matrix notation"):
        ix.parse_matrix(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "translation"),
    [
        ("x^T A x", "x_i A_ij x_j"),
        ("x' A x", "x_i A_ij x_j"),
        ("xᵀ A x", "x_i A_ij x_j"),
        ("x @ A @ x", "x_i A_ij x_j"),
        ("A @ x", "A_ij x_j"),
        ("np.dot(A, x)", "A_ij x_j"),
        ("np.dot(x, A)", "x_j A_ji"),
        ("A.T x", "A_ji x_j"),
        ("A ∘ B", "f_ij = A_ij B_ij"),
    ],
)
def test_index_input_that_looks_like_matrix_notation_suggests_the_translation(text, translation):
    with pytest.raises(ix.ParseError) as info:
        ix.parse(text)
    assert f"in index notation it is {translation} " in info.value.hint
    assert "ix.parse_matrix" in info.value.hint and "--matrix" in info.value.hint


def test_transposes_in_index_notation_are_explained():
    with pytest.raises(ix.ParseError) as info:
        ix.parse("x_i^T A_ij x_j")
    assert "index notation has no transposes" in info.value.hint


@pytest.mark.parametrize("text", ["x_i +", "x_i A_ij'", "exp(x_i", "2 @@ 3"])
def test_other_errors_keep_their_hints(text):
    with pytest.raises(ix.ParseError) as info:
        ix.parse(text)
    assert "matrix notation" not in (info.value.hint or "")


def test_cli_prints_the_translation_then_the_derivative(capsys):
    assert main(["--matrix", "x' A x", "--wrt", "x"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["x' A x  =  x_i A_ij x_j", "A_ik x_i + A_kj x_j"]


def test_cli_matrix_check_and_file(capsys, tmp_path):
    path = tmp_path / "loss.txt"
    path.write_text("# least squares\nnorm2(A x - b)^2\n", encoding="utf-8")
    assert main(["-f", str(path), "--matrix", "--wrt", "x", "--check"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "norm2(A x - b)^2  =  sum_i((A_ij x_j - b_i)^2)"
    assert "check d/dx: ok" in captured.err


def test_cli_matrix_errors_exit_2_with_the_caret(capsys):
    assert main(["--matrix", "x x", "--wrt", "x"]) == 2
    err = capsys.readouterr().err
    assert "indexdiff: error: cannot multiply 'x' by 'x'" in err and "  x x\n  ^^^" in err
    assert "hint: did you mean xᵀ x or x xᵀ?" in err
    assert "Traceback" not in err


def test_cli_matrix_json_keeps_stdout_json(capsys):
    import json

    assert main(["--matrix", "x' A x", "--wrt", "A", "--format", "json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["input"] == "x' A x" and out["index"] == "x_i A_ij x_j"
    assert "x' A x  =  x_i A_ij x_j" in captured.err


def test_cli_notes_bare_scalars_that_read_as_matrix_notation(capsys):
    assert main(["A*x", "--wrt", "x"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "A"  # still the derivative of a product of scalars
    assert "every name in 'A*x' is a scalar" in captured.err and "A_ij x_j" in captured.err
    assert main(["a*b", "--wrt", "a"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_suggests_matrix_for_index_errors(capsys):
    assert main(["x^T A x", "--wrt", "x"]) == 2
    err = capsys.readouterr().err
    assert "in index notation it is x_i A_ij x_j" in err


def test_the_grammar_is_read_from_the_source_tree_or_the_package():
    text = grammar_text("matrix.lark")
    assert "NORMOPEN" in text and "statement" in text


def test_cli_shapes_declare_names(capsys):
    assert main(["--matrix", "dz1ᵀ x", "--shapes", "dz1=matrix, x=matrix"]) == 0
    assert capsys.readouterr().out.splitlines() == ["dz1ᵀ x  =  dz1_ki x_kj", "dz1_ki x_kj"]


@pytest.mark.parametrize(
    ("argv", "reason", "caret"),
    [
        (["--matrix", "x", "--shapes", "b=vector,a=vec"], "bad shape 'a=vec'", "a=vec"),
        (["--matrix", "x", "--shapes", "tr=vector"], "cannot be a name", "tr=vector"),
        (["--matrix", "x", "--shapes", "b"], "bad shape 'b'", "b"),
        (["x_i", "--shapes", "b=vector"], "--shapes has no effect without --matrix", None),
    ],
)
def test_cli_bad_shapes_exit_2(capsys, argv, reason, caret):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err
    if caret is not None:
        line, marks = err.splitlines()[1:3]
        start = marks.index("^")
        assert line[start : start + marks.count("^")] == caret


def test_parsing_matrix_notation_imports_no_numpy():
    import subprocess
    import sys

    code = (
        "import sys, indexdiff as ix; e = ix.parse_matrix(\"x' A x + norm2(A x - b)^2\"); str(ix.diff(e, 'x'))\n"
        'try:\n    ix.parse("x\' A x")\nexcept ix.IndexDiffError:\n    pass\n'
        "print('numpy' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
