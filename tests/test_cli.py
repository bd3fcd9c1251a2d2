"""The command line: outputs, formats, --check, exit codes, errors on stderr without a traceback."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
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
    import importlib

    from indexdiff.check import CheckReport, CheckResult

    # the command line imports check where --check uses it (tests/test_imports.py): patch it there
    checker = importlib.import_module("indexdiff.check")
    monkeypatch.setattr(checker, "check", lambda *a, **k: CheckReport((CheckResult(("x",), 1.0, 1.0, False),)))
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
        ("h_i = x_i\nL = h_i h_i\n", ["--wrt", "x", "--loss", "q"], "the program defines no 'q'"),
        ("h_i = x_i\nL = h_i h_i\n", ["--wrt", "q"], "does not depend on it"),
    ],
)
def test_bad_programs_exit_2(capsys, tmp_path, program, argv, message):
    f = tmp_path / "bad.idx"
    f.write_text(program)
    code, out, err = run(capsys, "-f", str(f), *argv)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message", "hint"),
    [
        (["x_i x_i", "--wrt", "x", "--check", "--dims", "i=²"], "bad size 'i=²'", "digits 0-9"),
        (["x_i x_i", "--wrt", "x", "--check", "--seed", "-1"], "--seed must be an integer >= 0", "--seed 0"),
        (["x_i A_ij", "--wrt", "x", "--check", "--dims", "i=3", "--dims", "i=4"], "two sizes in --dims (3 and 4)", ""),
        (["x_i A_ij", "--wrt", "x", "--check", "--dims", "i=3,q=4"], "'q', which is not an index", "are: i, j"),
        (["x_i x_i", "--wrt", "x", "--dims", "i=3"], "--dims has no effect without --check", "add --check"),
        (["x_i x_i", "--wrt", "x", "--data", "d.npz"], "--data has no effect without --check", "add --check"),
        (["x_i x_i", "--wrt", "x", "--check", "--data", "/no/such.npz"], "cannot read /no/such.npz", "file name"),
        (["x_i A_ij x_j", "--wrt", "x", "--check", "--dims", "i=100000"], "74.5 GiB", "smaller sizes"),
    ],
)
def test_bad_options_exit_2_with_a_quoted_message_and_hint(capsys, argv, message, hint):
    start = time.perf_counter()
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err and "Traceback" not in err
    assert hint in next(line for line in err.splitlines() if line.startswith("hint: "))
    assert time.perf_counter() - start < 5  # refused before any work (generous: the machine is shared)
    assert re.search(r"^ +\S", err, re.MULTILINE)  # the input is quoted


def test_dims_given_twice_add_up(capsys):
    code, _, err = run(capsys, "sum_i(x_i) sum_j(y_j)", "--wrt", "x", "--check", "--dims", "i=3", "--dims", "j=5")
    assert code == 0 and "sizes i=3, j=5" in err


def test_a_file_that_is_not_utf8_is_refused_at_the_bad_byte(capsys, tmp_path):
    f = tmp_path / "bad.idx"
    f.write_bytes(b"x_i\xff A_ij x_j")
    code, _, err = run(capsys, "-f", str(f))
    assert code == 2 and "not UTF-8 text (byte 0xff at offset 3)" in err
    assert err.splitlines()[2] == "     ^"  # under the byte, after the 2-space quote indent and x_i


def test_a_byte_order_mark_is_accepted(capsys, tmp_path):
    f = tmp_path / "bom.idx"
    f.write_bytes("\ufeffx_i A_ij x_j\n".encode())
    assert run(capsys, "-f", str(f))[1].strip() == "x_i A_ij x_j"
    assert run(capsys, "\ufeffx_i A_ij x_j")[1].strip() == "x_i A_ij x_j"


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", "\ufeffx_i x_i\n".encode()])
def test_stdin_binary_is_refused_and_a_bom_is_accepted(data):
    proc = subprocess.run([sys.executable, "-m", "indexdiff", "-f", "-"], input=data, capture_output=True, check=False)
    err = proc.stderr.decode()
    if data.startswith(b"\x89"):
        assert proc.returncode == 2 and "stdin is not UTF-8 text" in err and "Traceback" not in err
    else:
        assert proc.returncode == 0 and proc.stdout.decode().strip() == "x_i x_i"


def test_check_at_the_arrays_of_an_npz_file(capsys, tmp_path, rng):
    f = tmp_path / "data.npz"
    np.savez(f, A=rng.normal(size=(4, 2)), x=rng.normal(size=2), unused=np.ones(3))
    code, _, err = run(capsys, "sum_j((A_ji x_i)^2)", "--wrt", "x,x", "--check", "--data", str(f))
    assert code == 0 and "d/dx/dx: ok" in err and "given arrays, sizes i=2, j=4" in err
    np.savez(f, A=np.ones((4, 2)), x=np.ones((2, 2)))
    code, _, err = run(capsys, "sum_j((A_ji x_i)^2)", "--wrt", "x", "--check", "--data", str(f))
    assert code == 2 and "'x' has 1 index but the array has 2 axes" in err
    np.savez(f, A=np.ones((4, 2)))
    assert "no array given for 'x'" in run(capsys, "sum_j((A_ji x_i)^2)", "--wrt", "x", "--check", "--data", str(f))[2]
    np.savez(f, A=np.ones((4, 2)), x=np.array(["a", "b"]))
    assert (
        "the array for 'x' is not real numbers" in run(capsys, "A_ji x_i", "--wrt", "x", "--check", "--data", str(f))[2]
    )
    np.savez(f, A=np.ones((4, 2)), x=np.array([{}, {}], dtype=object))
    code, _, err = run(capsys, "A_ji x_i", "--wrt", "x", "--check", "--data", str(f))
    assert code == 2 and "cannot read the array 'x'" in err
    f.write_text("x = 1\n")
    assert "is not an .npz file" in run(capsys, "A_ji x_i", "--wrt", "x", "--check", "--data", str(f))[2]


def test_overflow_at_the_data_is_reported_as_such(capsys, tmp_path):
    f = tmp_path / "big.npz"
    np.savez(f, x=np.array([1000.0, 1.0]))
    code, _, err = run(capsys, "sum_i(exp(x_i))", "--wrt", "x", "--check", "--data", str(f))
    assert code == 1 and "the value overflows at this data" in err
    assert "FAILED" not in err and "RuntimeWarning" not in err
    code, out, _ = run(capsys, "sum_i(exp(x_i))", "--wrt", "x", "--check", "--data", str(f), "--format", "json")
    (result,) = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))["check"]
    assert code == 1 and not result["ok"] and result["max_abs_error"] is None and "overflows" in result["cause"]


def test_a_vacuous_check_warns(capsys, tmp_path):
    f = tmp_path / "saturated.npz"
    np.savez(f, X=np.ones((2, 300)), y=np.ones(2), w=np.ones(300))
    code, _, err = run(capsys, "sum_i(log(1 + exp(-y_i X_ij w_j)))", "--wrt", "w", "--check", "--data", str(f))
    assert code == 0 and "warning: every derivative value checked is below 1e-12" in err


def test_long_checks_print_progress(capsys, monkeypatch):
    monkeypatch.setattr(importlib.import_module("indexdiff.check"), "_timed", lambda run: 1.0)
    code, _, err = run(capsys, "x_i A_ij x_j", "--wrt", "x", "--check", "--dims", "i=3")
    assert code == 0 and "checking d/dx: 3/3 perturbations" in err


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [(MemoryError(), 2, "out of memory"), (KeyboardInterrupt(), 130, ""), (RecursionError(), 2, "deeply nested")],
)
def test_main_turns_resource_errors_into_exit_codes(capsys, monkeypatch, raised, code, message):
    import indexdiff.cli as cli

    def fail(argv):
        raise raised

    monkeypatch.setattr(cli, "run", fail)
    assert cli.main(["x"]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and (message or err == "")


def test_main_lets_a_bug_show_its_traceback(monkeypatch):
    import indexdiff.cli as cli

    def bug(argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "run", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["x"])


def test_output_the_terminal_cannot_encode_and_a_closed_pipe_end_cleanly():
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    cmd = [sys.executable, "-m", "indexdiff", "α_i x_i", "--wrt", "x"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 2 and "cannot encode" in proc.stderr and "Traceback" not in proc.stderr
    piped = subprocess.Popen(
        [sys.executable, "-m", "indexdiff", "x_i A_ij x_j", "--wrt", "x"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    piped.stdout.close()  # the reader leaves before anything is written
    err = piped.stderr.read().decode()
    assert piped.wait() == 141 and err == ""


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["-(x_i)*y_i", "--wrt", "x"], 2, "goes after '--'"),  # no space: argparse takes it for an option
        (["--frob"], 2, "see indexdiff --help"),
        (["x", "--format", "rust"], 2, "invalid choice"),
        (["--version"], 0, ""),
    ],
)
def test_main_returns_the_status_of_argparse_too(capsys, argv, code, message):
    assert main(argv) == code  # never a SystemExit out of main
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_expression_starting_with_minus_goes_after_double_dash(capsys):
    code, out, _ = run(capsys, "--wrt", "x", "--", "-(x_i)*y_i")
    assert code == 0 and ix.parse(out) == ix.parse("-y_k")
