"""Programs shown the way expressions are: their reverse mode step by step (--steps), Program._repr_latex_,
--format latex of a gradient program, and --label."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.derivation import parse_step

NET = """z1_bi = W1_ij x_bj + b1_i
h1_bi = relu(z1_bi)
z2_bi = W2_ij h1_bj + b2_i
h2_bi = sigmoid(z2_bi)
L = sum_bi((h2_bi - y_bi)^2)
"""
WRT = ["W1", "b1", "W2", "b2"]


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"W1": (4, 3), "x": (5, 3), "b1": (4,), "W2": (2, 4), "b2": (2,), "y": (5, 2)}
    return {name: rng.normal(size=shape) for name, shape in shapes.items()}


def test_program_steps_are_the_adjoints_each_checked_in_the_program() -> None:
    p = ix.parse(NET)
    assert isinstance(p, ix.Program)
    d = ix.steps(p, *WRT)
    g = ix.grad(p, wrt=WRT)
    names = [s.name for s in g.statements]
    derived = g.statements[len(p.statements) :]
    assert [parse_step(s.after).name for s in d] == [s.name for s in derived]
    arrays = _arrays()
    for s in d:
        before, after = parse_step(s.before), parse_step(s.after)
        k = names.index(after.name)
        assert after == g.statements[k] and before.name == after.name
        assert "∂(" in s.before  # the chain rule's sum with the user's Jacobian pending
        value = ix.evaluate(ix.Program((*g.statements[:k], before)), arrays, output=before.name)
        np.testing.assert_allclose(value, ix.evaluate(g, arrays, output=after.name), rtol=1e-10, atol=1e-12)


def test_element_wise_layers_are_the_named_d_sigma_step() -> None:
    d = ix.steps(ix.parse(NET), "W1")
    rules = {parse_step(s.after).name: s.rule for s in d}
    assert rules["dz2"] == "d_σ ∘ u"  # h2 = sigmoid(z2): dz2 = dh2 ∘ σ'(z2)
    assert rules["dz1"] == "d_relu ∘ u"
    assert rules["dh2"] == "derivative of the loss"
    assert rules["dW1"] == "chain rule"
    assert "σ'(z2)" in next(s.note for s in d if s.rule == "d_σ ∘ u")


def test_program_steps_text_and_latex() -> None:
    p = ix.parse(NET)
    d = ix.steps(p, "W1")
    text = str(d).split("\n")
    assert text[: len(p.statements)] == [str(s) for s in p.statements]  # the forward pass first
    tex = d.latex()
    assert tex.startswith("\\begin{aligned}") and tex.endswith("\\end{aligned}") and tex.isascii()
    rows = tex.split("\n")[1:-1]
    assert len(rows) == len(p.statements) + 2 * len(d)  # forward rows; each adjoint: its chain sum, its result
    assert all(r.count("&") in (1, 3) for r in rows)
    assert "\\text{(2) d\\_$\\sigma$ $\\circ$ u}" in tex


def test_program_repr_latex_is_aligned_statements() -> None:
    p = ix.parse(NET)
    tex = p._repr_latex_()
    assert tex.startswith("$$\\begin{aligned}") and tex.endswith("\\end{aligned}$$")
    rows = tex.removeprefix("$$\\begin{aligned}\n").removesuffix("\n\\end{aligned}$$").split(" \\\\\n")
    assert len(rows) == len(p.statements)
    for row, s in zip(rows, p.statements):
        lhs, rhs = row.split(" &= ")
        assert ix.codegen(ix.Program((s,)), format="latex") == f"{lhs} = {rhs}"


def test_program_steps_bad_input() -> None:
    p = ix.parse(NET)
    with pytest.raises(ix.IndexDiffError):
        ix.steps(p, "nothing")
    with pytest.raises(ix.IndexDiffError):
        ix.steps(p, "W1", loss="h1")  # not a scalar
    with pytest.raises(ix.IndexDiffError):
        ix.steps(p)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def net(tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "net.idx"
    path.write_text(NET, encoding="utf-8")
    return str(path)


def test_cli_program_steps(capsys: pytest.CaptureFixture[str], net: str) -> None:
    code, out, err = _run(capsys, "-f", net, "--wrt", "W1", "--steps")
    assert code == 0 and not err
    assert "d_σ ∘ u" in out and "d_relu ∘ u" in out
    code, plain, _ = _run(capsys, "-f", net, "--wrt", "W1")
    assert out.rstrip().split("\n")[-1].strip() == "= " + plain.rstrip().split("\n")[-1].split(" = ", 1)[1]
    code, tex, _ = _run(capsys, "-f", net, "--wrt", "W1", "--steps", "--format", "latex")
    assert code == 0 and tex.startswith("\\begin{aligned}")
    code, _, err = _run(capsys, "-f", net, "--wrt", "W1,W1", "--steps")
    assert code == 2 and "one variable per --wrt" in err


def test_cli_latex_of_a_gradient_program_is_the_backward_program(capsys: pytest.CaptureFixture[str], net: str) -> None:
    code, tex, _ = _run(capsys, "-f", net, "--wrt", "W1", "--format", "latex")
    lines = tex.rstrip().split("\n")
    code2, plain, _ = _run(capsys, "-f", net, "--wrt", "W1")
    assert code == code2 == 0
    assert len(lines) == len(plain.rstrip().split("\n"))  # one line per statement of the backward program
    assert lines[-1].startswith("\\mathit{dW1}") and "\\mathit{dz1}" in lines[-1]


def test_cli_label(capsys: pytest.CaptureFixture[str]) -> None:
    code, bare, _ = _run(capsys, "x_i A_ij x_j", "--wrt", "x", "--wrt", "A", "--wrt", "x,x")
    code2, labelled, _ = _run(capsys, "x_i A_ij x_j", "--wrt", "x", "--wrt", "A", "--wrt", "x,x", "--label")
    assert code == code2 == 0
    heads = []
    for plain, line in zip(bare.split("\n"), labelled.split("\n")):
        head, _, rest = line.partition(" = ")
        assert rest == plain  # the label, then the default output unchanged
        heads.append(head)
    assert heads[:3] == ["∂f/∂x_k", "∂f/∂A_kl", "∂^2f/∂x_k∂x_l"]
    code, einsum, _ = _run(capsys, "x_i A_ij x_j", "--wrt", "x", "--label", "--format", "einsum")
    assert einsum.startswith("∂f/∂x_k = (np.einsum(")
    code, zero, _ = _run(capsys, "b_i x_i", "--wrt", "x,x", "--label")
    assert zero.strip() == "∂^2f/∂x_k∂x_l = 0"


def test_program_steps_unused_variables_and_named_indices() -> None:
    p = ix.parse("h_i = tanh(x_i); u_i = exp(x_i); L = sum_i(h_i)")
    d = ix.steps(p, "x_k", "u")
    g = ix.grad(p, wrt=["x_k", "u"])
    assert d[-1].rule == "unused" and d[-1].after == str(g["du"])
    named = next(s for s in d if s.rule == "indices named")
    assert named.after == str(g["dx"]) and parse_step(named.after).free == ("k",)
    k = [s.name for s in g.statements].index("dx")
    arrays = {"x": np.linspace(0.1, 0.9, 4)}
    values = [
        ix.evaluate(ix.Program((*g.statements[:k], parse_step(text))), arrays, output="dx")
        for text in (named.before, named.after)
    ]
    np.testing.assert_allclose(values[0], values[1], rtol=1e-12)
    np.testing.assert_allclose(values[1], 1 - np.tanh(arrays["x"]) ** 2, rtol=1e-12)
