"""The command line: outputs, formats, --check, exit codes, errors on stderr without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import indexdiff as ix
from indexdiff.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_gradient_matrix_derivative_and_hessian(capsys):
    code, out, _ = run(capsys, "x_i A_ij x_j", "--wrt", "x")
    assert code == 0 and ix.parse(out) == ix.parse("A_kj x_j + A_ik x_i")
    assert ix.parse(run(capsys, "x_i A_ij x_j", "--wrt", "A")[1]) == ix.parse("x_k x_l")
    assert ix.parse(run(capsys, "x_i A_ij x_j", "--wrt", "x,x")[1]) == ix.parse("A_kl + A_lk")


def test_two_derivatives_one_per_line(capsys):
    _, out, _ = run(capsys, "x_i A_ij x_j", "--wrt", "x", "--wrt", "A")
    assert out.splitlines() == ["A_ik x_i + A_kj x_j", "x_k x_l"]


def test_named_indices_with_commas_in_braces(capsys):
    _, out, _ = run(capsys, "x_i A_ij x_j", "--wrt", "A_{r,c}")
    assert out.strip() == "f_rc = x_c x_r"


def test_json_format(capsys):
    code, out, _ = run(capsys, "x_i A_ij x_j", "--wrt", "x", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["input"] == "x_i A_ij x_j" and data["free"] == []
    (d,) = data["derivatives"]
    assert d["wrt"] == "x" and d["free"] == ["k"]
    assert ix.parse(d["index"]) == ix.parse("A_kj x_j + A_ik x_i")
    assert "np.einsum(" in d["einsum"]


def test_einsum_format_runs(capsys, rng):
    import numpy as np

    _, out, _ = run(capsys, "sum_i((A_ij x_j - b_i)^2)", "--wrt", "x", "--format", "einsum")
    A, x, b = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4)
    value = eval(out, {"np": np, "A": A, "x": x, "b": b})  # noqa: S307 - our own generated code
    assert np.allclose(value, 2 * A.T @ (A @ x - b))


def test_check_passes_with_dims(capsys):
    code, _, err = run(capsys, "sum_i(log(1 + exp(-y_i X_ij w_j)))", "--wrt", "w,w", "--check", "--dims", "i=7,j=3")
    assert code == 0 and "d/dw/dw: ok" in err and "i=7" in err


def test_no_wrt_prints_the_expression(capsys):
    assert run(capsys, "L = (z_i - t_i)^2")[1].strip() == "L = sum_i((z_i - t_i)^2)"


def test_program_from_a_file(capsys, tmp_path):
    f = tmp_path / "net.idx"
    f.write_text("# a layer\nh_bi = tanh(W_ij x_bj)\nL = sum_bi(h_bi^2)\n")
    code, out, _ = run(capsys, "-f", str(f), "--wrt", "W", "--check")
    assert code == 0 and "tanh" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x_i +"], "ends too early"),
        (["x_i + y_j"], "different free indices"),
        (["x_i A_ij x_j", "--wrt", "y"], "does not contain it"),
        (["x_i A_ij x_j", "--wrt", "x,"], "empty variable name"),
        (["x_i x_i", "--wrt", "x", "--check", "--dims", "i=0"], "bad size"),
        (["-f", "/no/such/file.idx"], "cannot read"),
        ([], "no expression given"),
        (["x", "-f", "-"], "not both"),
    ],
)
def test_bad_input_exits_2_with_message_on_stderr(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_failed_check_exits_1(capsys, monkeypatch):
    import indexdiff.cli as cli
    from indexdiff.check import CheckReport, CheckResult

    monkeypatch.setattr(cli, "check", lambda *a, **k: CheckReport((CheckResult(("x",), 1.0, 1.0, False),)))
    code, _, err = run(capsys, "x_i x_i", "--wrt", "x", "--check")
    assert code == 1 and "FAILED" in err


def test_python_dash_m_and_stdin():
    proc = subprocess.run(
        [sys.executable, "-m", "indexdiff", "-f", "-", "--wrt", "x"],
        input="x_i A_ij x_j\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and ix.parse(proc.stdout) == ix.parse("A_kj x_j + A_ik x_i")
    bad = subprocess.run([sys.executable, "-m", "indexdiff", "(x_i"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "never closed" in bad.stderr and "Traceback" not in bad.stderr


def test_help_has_examples():
    proc = subprocess.run([sys.executable, "-m", "indexdiff", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "--wrt x,x" in proc.stdout and "exit status" in proc.stdout


def test_program_prints_its_backward_pass(capsys, tmp_path):
    f = tmp_path / "net.idx"
    f.write_text("z_bi = W_ij x_bj + c_i\nh_bi = sigmoid(z_bi)\nL = sum_bi((h_bi - y_bi)^2)\n")
    assert main(["-f", str(f), "--wrt", "W", "--wrt", "c"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "dz_bi = dh_bi h_bi (1 - h_bi)" in out and "dW_ij = dz_bi x_bj" in out and "dc_i = sum_b(dz_bi)" in out
    assert ix.parse("\n".join(out)) == ix.grad(ix.parse(f.read_text()), wrt=["W", "c"])


@pytest.mark.parametrize(
    ("program", "argv", "message"),
    [
        ("h_i = g_i\ng_i = x_i\nL = h_i h_i\n", ["--wrt", "x"], "used before its definition"),
        ("h_i = x_i\nh_i = 2 x_i\nL = h_i h_i\n", ["--wrt", "x"], "defined twice"),
        ("h_i = x_i\nL = h_ij\n", ["--wrt", "x"], "used with 2 indices"),
        ("h_i = x_i\nL = h_i h_i\n", ["--wrt", "x", "--loss", "h"], "not a scalar"),
        ("h_i = x_i\nL = h_i h_i\n", ["--wrt", "q"], "does not depend on it"),
    ],
)
def test_bad_programs_exit_2(capsys, tmp_path, program, argv, message):
    f = tmp_path / "bad.idx"
    f.write_text(program)
    code, out, err = run(capsys, "-f", str(f), *argv)
    assert code == 2 and message in err and "Traceback" not in err
