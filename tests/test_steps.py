"""ix.steps and --steps: every step of a derivation is one named rule, parses back and evaluates equal to the step
before it; the last step is ix.diff's result."""

from __future__ import annotations

import re

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.derivation import parse_step
from indexdiff.names import all_indices
from indexdiff.trace import TRACE

N = 3

CASES = [
    ("x_i A_ij x_j", "x"),  # quadratic form
    ("x_i A_ij x_j", "A"),
    ("sum_i((A_ij x_j - b_i)^2)", "x"),  # least squares
    ("sum_i(log(1 + exp(-y_i X_ij w_j)))", "w"),  # logistic
    ("sum_b(log(sum_j(exp(z_bj))) - z_bj t_bj)", "z"),  # softmax cross-entropy
    ("logdet(C_ij)", "C"),
    ("0.5 n logdet(C_ij) + 0.5 r_i inv(C_ij) r_j", "C"),  # Gaussian
    ("x_i inv(A_ij) x_j", "x"),
    ("x_i inv(A_ij) x_j", "A"),
    ("det(A_ij)", "A"),
    ("softmax_j(z_ij)", "z"),
    ("logsumexp_j(z_j)", "z"),
    ("mean_j(x_ij^2)", "x"),
    ("max_j(x_ij)", "x"),
    ("sum_i(x_i / (1 + x_i^2))", "x"),  # quotient
    ("u_i / v_i", "v"),
    ("sum_i(x_i^3)", "x"),  # power
    ("sum_i(sqrt(x_i))", "x"),
    ("sum_i(tanh(W_ij x_j))", "W"),
    ("sum_i(sigmoid(x_i) x_i)", "x"),
    ("exp(a x_i x_i)", "a"),
    ("sum_i(sin(x_i) cos(x_i))", "x"),
    ("W_ij x_j + b_i", "W"),
    ("W_ij x_j + b_i", "b"),
    ("sum_i(log(x_i)) + x_j x_j", "x"),  # sums
    ("sum_i(softplus(x_i))", "x"),
    ("x_i x_i", "x"),
    ("x_i - x_i + c", "x"),  # a zero derivative
]


def _arrays(exprs: list[ix.Expr], seed: int = 0) -> dict[str, np.ndarray]:
    """Positive data (inside the domain of log and sqrt); matrices near the identity (inv, det, logdet defined)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for e in exprs:
        for name, rank in sorted(e.variables.items()):
            if name not in out:
                a = rng.uniform(0.5, 1.5, (N,) * rank) / N
                out[name] = a + np.eye(N) if rank == 2 else a
    return out


def _value(e: ix.Expr, arrays: dict[str, np.ndarray]) -> np.ndarray:
    dims = {i: N for i in all_indices(e.node) | set(e.free)}
    return np.asarray(ix.evaluate(e, arrays, dims=dims))


def _assert_steps_hold(e: ix.Expr, d: ix.Derivation, *wrt: str) -> None:
    parsed = {t: parse_step(t) for s in d for t in (s.before, s.after)}
    arrays = _arrays([e, *parsed.values()])
    values = {t: _value(p, arrays) for t, p in parsed.items()}
    for s in d:
        before, after = parsed[s.before], parsed[s.after]
        vb, va = values[s.before], values[s.after]
        assert before.free == after.free, s
        assert vb.shape == va.shape, s
        np.testing.assert_allclose(vb, va, rtol=1e-10, atol=1e-12, err_msg=f"{s.rule}: {s.before} -> {s.after}")
    result = ix.diff(e, *wrt)
    assert d[-1].after == str(result)
    np.testing.assert_allclose(values[d[-1].after], _value(result, arrays), rtol=1e-12)


@pytest.mark.parametrize(("text", "wrt"), CASES)
def test_every_step_parses_back_and_evaluates_equal(text: str, wrt: str) -> None:
    e = ix.parse(text)
    d = ix.steps(e, wrt)
    assert len(d) >= 1 and all(s.rule for s in d)
    _assert_steps_hold(e, d, wrt)


def test_the_first_step_is_the_pending_derivative_and_evaluates_as_central_differences() -> None:
    e = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    d = ix.steps(e, "w")
    assert d[0].before.startswith("∂(") and d[0].before.endswith(")/∂w_k")
    arrays = _arrays([e])
    pending = _value(parse_step(d[0].before), arrays)
    h = 1e-6
    for k in range(N):
        step = np.zeros(N)
        step[k] = h
        up, down = ({**arrays, "w": arrays["w"] + s} for s in (step, -step))
        assert pending[k] == pytest.approx((_value(e, up) - _value(e, down)) / (2 * h), rel=1e-6)


def test_second_derivatives_chain_two_derivations() -> None:
    e = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    d = ix.steps(e, "w", "w")
    _assert_steps_hold(e, d, "w", "w")
    starts = [s for n, s in enumerate(d) if n and s.before != d[n - 1].after]
    assert len(starts) == 1 and starts[0].before.startswith("∂(") and starts[0].before.endswith("/∂w_l")


@pytest.mark.parametrize(
    ("text", "wrt", "rules"),
    [
        ("x_i A_ij x_j", "x", {"Σ rule", "product rule", "δ rule", "δ contraction"}),
        ("sum_i(tanh(W_ij x_j))", "W", {"chain rule", "δ contraction"}),
        ("sum_i(x_i^3)", "x", {"power rule"}),
        ("sum_i(x_i / (1 + x_i^2))", "x", {"quotient rule", "sum rule"}),
        ("softmax_j(z_ij)", "z", {"softmax rule"}),
        ("logsumexp_j(z_j)", "z", {"logsumexp rule"}),
        ("logdet(C_ij)", "C", {"logdet rule"}),
        ("x_i inv(A_ij) x_j", "A", {"inv rule"}),
        ("det(A_ij)", "A", {"det rule"}),
        ("mean_j(x_ij^2)", "x", {"mean rule"}),
        ("max_j(x_ij)", "x", {"max rule"}),
        ("x_i x_i", "x", {"like terms merged"}),
    ],
)
def test_rule_names(text: str, wrt: str, rules: set[str]) -> None:
    named = {r for s in ix.steps(ix.parse(text), wrt) for r in s.rule.split(", ")}
    assert rules <= named


def test_delta_contractions_of_the_quadratic_form_are_their_own_steps() -> None:
    d = ix.steps(ix.parse("x_i A_ij x_j"), "x")
    contractions = [s for s in d if s.rule == "δ contraction"]
    assert len(contractions) == 2
    for s in contractions:
        left, right = s.note.split(" → ")
        assert "δ" in left and "δ" not in right  # the δ is gone from the sub-expression it was in
        assert s.before.count("δ") == s.after.count("δ") + 1
    rules = [s.rule for s in d]
    assert rules.index("δ rule") < rules.index("δ contraction")


def test_chain_rule_notes_give_the_function_derivative_from_the_table() -> None:
    d = ix.steps(ix.parse("sum_i(sigmoid(x_i))"), "x")
    chain = next(s for s in d if s.rule == "chain rule")
    assert "sigmoid'(u) = " in chain.note
    derivative = chain.note.split("sigmoid'(u) = ")[1]
    u = np.linspace(-3, 3, 7)
    got = ix.evaluate(ix.parse("f_i = " + re.sub(r"\bu\b", "u_i", derivative)), {"u": u})
    s = 1 / (1 + np.exp(-u))
    np.testing.assert_allclose(got, s * (1 - s), rtol=1e-12)


def test_the_tracer_is_off_after_steps_and_after_errors() -> None:
    ix.steps(ix.parse("x_i A_ij x_j"), "x")
    assert TRACE.get() is None
    with pytest.raises(ix.IndexDiffError):
        ix.steps(ix.parse("x_i A_ij x_j"), "y")
    assert TRACE.get() is None
    assert str(ix.diff(ix.parse("x_i A_ij x_j"), "x")) == ix.steps(ix.parse("x_i A_ij x_j"), "x")[-1].after


def test_bad_input_is_an_indexdiff_error() -> None:
    e = ix.parse("x_i A_ij x_j")
    with pytest.raises(ix.DiffError):
        ix.steps(e)
    with pytest.raises(ix.ArgumentError):
        ix.steps("x_i A_ij x_j", "x")  # type: ignore[arg-type]
    with pytest.raises(ix.IndexDiffError) as err:
        ix.steps(e, "x_kl")
    assert err.value.hint
    with pytest.raises(ix.ArgumentError):
        ix.steps(e, "x", loss="L")
    with pytest.raises(ix.IndexDiffError):
        parse_step("∂(x_i A_ij x_j/∂x_k")
    with pytest.raises(ix.IndexDiffError):
        parse_step("∂(x_i)/x_k")


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize(("text", "wrt"), [CASES[0], CASES[3], CASES[4], CASES[5], CASES[14]])
def test_latex_is_an_aligned_block(text: str, wrt: str) -> None:
    d = ix.steps(ix.parse(text), wrt)
    tex = d.latex()
    assert tex.startswith("\\begin{aligned}\n") and tex.endswith("\n\\end{aligned}")
    assert tex.isascii()  # δ, Σ, ∂ and ∘ as LaTeX commands: pdflatex takes it as it is
    assert _balanced(tex)
    assert tex.count("\\left") == tex.count("\\right")
    rows = tex.split("\n")[1:-1]
    assert len(rows) == len(d) + 1  # the expression, then one row per step
    assert all(r.count("&") in (1, 3) for r in rows)
    assert all(r.endswith(" \\\\") for r in rows[:-1]) and not rows[-1].endswith("\\\\")
    for n in range(1, len(d) + 1):
        assert f"\\text{{({n}) " in rows[n]
    assert d._repr_latex_().startswith("$$") and "<ol>" in d._repr_html_()


def test_text_numbers_every_step_and_ends_with_the_result() -> None:
    d = ix.steps(ix.parse("x_i A_ij x_j"), "x")
    text = str(d).split("\n")
    numbered = [line for line in text if re.match(r"\s*\d+\. ", line)]
    assert [int(line.split(".")[0]) for line in numbered] == list(range(1, len(d) + 1))
    assert text[-1].strip() == "= " + str(ix.diff(ix.parse("x_i A_ij x_j"), "x"))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_steps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "x_i A_ij x_j", "--wrt", "x")
    assert code == 0
    code, steps_out, err = _run(capsys, "x_i A_ij x_j", "--wrt", "x", "--steps")
    assert code == 0 and not err
    assert steps_out.rstrip().split("\n")[-1].strip() == "= " + out.strip()
    assert "δ contraction" in steps_out
    code, latex, _ = _run(capsys, "x_i A_ij x_j", "--wrt", "x", "--steps", "--format", "latex")
    assert code == 0 and latex.startswith("\\begin{aligned}") and _balanced(latex)
    code, js, _ = _run(capsys, "x_i A_ij x_j", "--wrt", "x", "--wrt", "A", "--steps", "--format", "json")
    import json

    parsed = json.loads(js)
    assert code == 0 and len(parsed) == 2 and parsed[0][-1]["after"] == out.strip()


@pytest.mark.parametrize(
    "args",
    [
        ("x_i A_ij x_j", "--steps"),  # no --wrt
        ("x_i A_ij x_j", "--wrt", "x", "--steps", "--format", "einsum"),
        ("x_i A_ij x_j", "--wrt", "y", "--steps"),
        ("x_i A_ij x_j +", "--wrt", "x", "--steps"),
    ],
)
def test_cli_steps_bad_input_exits_2(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    code, out, err = _run(capsys, *args)
    assert code == 2 and not out
    assert err.startswith("indexdiff: error:") and "Traceback" not in err


def test_symmetric_tensors_end_in_a_named_step() -> None:
    e = ix.parse("a_i S_ij b_j + x_i S_ij x_j", symmetric={"S"})
    rng = np.random.default_rng(1)
    s = rng.uniform(0.5, 1.5, (N, N))
    arrays = {"S": s + s.T, **{v: rng.uniform(0.5, 1.5, N) for v in "abx"}}
    d = ix.steps(e, "x")
    assert d[-1].after == str(ix.diff(e, "x"))
    for step in d:  # at symmetric data every step holds
        before, after = parse_step(step.before), parse_step(step.after)
        np.testing.assert_allclose(_value(before, arrays), _value(after, arrays), rtol=1e-10)
    by_s = ix.steps(e, "S")
    assert by_s[-1].after == str(ix.diff(e, "S"))
    assert by_s[-1].rule == "S is symmetric: the derivative by it is (G + Gᵀ)/2"
    gradient = _value(parse_step(by_s[-1].before), arrays)
    np.testing.assert_allclose(_value(parse_step(by_s[-1].after), arrays), (gradient + gradient.T) / 2, rtol=1e-12)


def test_a_registered_function_shows_its_own_derivative() -> None:
    with ix.function("cube", numpy=lambda a: a**3, derivative="3 u^2"):
        e = ix.parse("sum_i(cube(x_i))")
        d = ix.steps(e, "x")
        chain = next(s for s in d if s.rule == "chain rule")
        assert chain.note.endswith("cube'(u) = 3 u^2")
        _assert_steps_hold(e, d, "x")


def test_a_large_expression_takes_a_level_per_step() -> None:
    e = ix.parse(" + ".join(f"c{k} x_i x_i" for k in range(60)))
    d = ix.steps(e, "x")
    assert len(d) < 15  # not one step per rule application: the steps stay linear in the expression's size
    assert any("product rule ×60" in s.rule for s in d)
    _assert_steps_hold(e, d, "x")


def test_a_derivative_that_no_longer_uses_the_variable_is_a_constant_step() -> None:
    e = ix.parse("W_ij x_j")
    d = ix.steps(e, "x", "x")
    constant = [s for s in d if s.rule == "constant"]
    assert len(constant) == 1 and constant[0].before.startswith("∂(") and constant[0].after == "f_ikl = 0"
    _assert_steps_hold(e, d, "x", "x")
    zero = ix.steps(ix.parse("0 x_i + c"), "x")
    assert "zero factor (0 u = 0)" in [s.rule for s in zero]
