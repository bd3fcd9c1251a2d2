"""Generated code shares work: a ``--format python`` module computes value and derivatives in one body, each
subexpression used more than once (and each matrix function of one matrix) once per call, in the inputs' float
dtype; ``--format einsum`` of a program's gradient refers to the forward statements by name. Work is counted by
running the module against a numpy that records its calls; values are checked against ix.evaluate."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from collections import Counter

import numpy as np
import pytest

import indexdiff as ix

LOGISTIC = "sum_i(log(1 + exp(-y_i X_ij w_j)))"
GAUSSIAN = "0.5 logdet(S_ij) + 0.5 (x_i - m_i) inv(S_ij) (x_j - m_j)"
MLP = "z1_bi = W1_ij x_bj + b1_i\nh1_bi = tanh(z1_bi)\nz2_b = w2_j h1_bj + b2\nL = sum_b(softplus(-y_b z2_b))"


class _Recording(types.SimpleNamespace):
    """numpy, with its einsum and linalg calls counted (and each einsum result's dtype kept)."""

    def __init__(self) -> None:
        super().__init__(calls=Counter(), dtypes=[])

    def __getattr__(self, name):
        return getattr(np, name)

    def einsum(self, spec, *args, **options):
        out = np.einsum(spec, *args, **options)
        self.calls["einsum " + spec] += 1
        self.dtypes.append(out.dtype)
        return out

    @property
    def linalg(self):
        def counted(name):
            def call(*args):
                self.calls[name] += 1
                return getattr(np.linalg, name)(*args)

            return call

        return types.SimpleNamespace(
            inv=counted("inv"), solve=counted("solve"), slogdet=counted("slogdet"), LinAlgError=np.linalg.LinAlgError
        )


def _module(code: str, recording: _Recording | None = None) -> dict:
    namespace: dict = {"__name__": "generated"}
    exec(compile(code, "generated", "exec"), namespace)  # noqa: S102 - the code under test
    if recording is not None:
        namespace["np"] = recording
    return namespace


def _data(dtype=np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    return {
        "X": rng.normal(size=(6, 3)).astype(dtype),
        "y": rng.choice([-1.0, 1.0], size=6).astype(dtype),
        "w": rng.normal(size=3).astype(dtype),
        "S": (a @ a.T + 4 * np.eye(4)).astype(dtype),
        "x": rng.normal(size=4).astype(dtype),
        "m": rng.normal(size=4).astype(dtype),
    }


def _references(text: str, chains: tuple[str, ...], arrays: dict, dims: dict | None = None) -> list[np.ndarray]:
    e = ix.parse(text)
    return [ix.evaluate(d, arrays, dims) for d in (e, *(ix.diff(e, *c.split(",")) for c in chains))]


def test_logistic_loss_module_computes_the_margin_and_the_sigmoid_once() -> None:
    code = ix.codegen(ix.parse(LOGISTIC), "w", "w,w")
    body = code[code.index("def evaluate(") : code.index("_FUNCTIONS =")]
    assert code.count("(X @ w) * y") == 1, body  # the margin: a matrix-vector product, then the labels
    assert code.count("(lambda e: e / (1 + e))") == 1, body  # the sigmoid, used by gradient and Hessian
    assert "(X.T @ (y * t1))" in body  # the gradient as written by hand
    # The Hessian as (X d)ᵀ X: the vectors multiplied element-wise, then into X, then one matrix product.
    assert "(((X * (((np.power(y, 2)) * t1 * ((1.0 + -1.0 * t1))))[:, None])).T @ X)" in body
    recording = _Recording()
    module = _module(code, recording)
    arrays = {n: _data()[n] for n in ("X", "y", "w")}
    got = module["evaluate"](**arrays)
    assert recording.calls == Counter()  # no einsum: products and matrix products only
    for g, want in zip(got, _references(LOGISTIC, ("w", "w,w"), arrays), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)


def test_gaussian_nll_module_inverts_and_factorizes_once_per_call() -> None:
    chains = ("m", "S", "m,m")
    code = ix.codegen(ix.parse(GAUSSIAN), *chains)
    assert code.count("_inv(S)") == 1 and code.count("_logdet(S)") == 1
    assert code.count("(x + -1.0 * m)") == 1  # x_i - m_i and x_j - m_j: one temporary
    recording = _Recording()
    module = _module(code, recording)
    arrays = {n: _data()[n] for n in ("S", "x", "m")}
    got = module["evaluate"](**arrays)
    assert recording.calls["inv"] == 1 and recording.calls["slogdet"] == 1 and recording.calls["solve"] == 0
    # The shared inverse meets each vector first (as a solve would): no product of two matrices and two vectors.
    assert all(call.count(",") <= 1 for call in recording.calls if call.startswith("einsum")), recording.calls
    for g, want in zip(got, _references(GAUSSIAN, chains, arrays), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)


def test_an_inverse_and_its_transpose_are_one_inversion() -> None:
    text = "a_i inv(C_ij) B_jk b_k + a_i inv(C_ji) b_j"
    code = ix.codegen(ix.parse(text), "a", "C")
    recording = _Recording()
    module = _module(code, recording)
    rng = np.random.default_rng(2)
    arrays = {"a": rng.normal(size=3), "b": rng.normal(size=3), "B": rng.normal(size=(3, 3))}
    arrays["C"] = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    got = module["evaluate"](**arrays)
    assert recording.calls["inv"] == 1 and recording.calls["solve"] == 0, code
    for g, want in zip(got, _references(text, ("a", "C"), arrays), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)


def test_an_inverse_used_once_is_still_a_solve() -> None:
    recording = _Recording()
    module = _module(ix.codegen(ix.parse("x_i inv(S_ij) x_j")), recording)
    arrays = {n: _data()[n] for n in ("S", "x")}
    got = module["evaluate"](**arrays)
    assert recording.calls == Counter({"solve": 1})  # and x @ solve(S, x)
    np.testing.assert_allclose(got, arrays["x"] @ np.linalg.solve(arrays["S"], arrays["x"]), rtol=1e-12)


@pytest.mark.parametrize(
    ("text", "chains", "names"),
    [
        (LOGISTIC, ("w", "w,w"), ("X", "y", "w")),
        (GAUSSIAN, ("m", "S", "m,m"), ("S", "x", "m")),
        ("sum_i(relu(X_ij w_j)^2)", ("w", "w,w"), ("X", "w")),  # step
        ("x_j x_j sum_i(δ_ii)", ("x", "x,x"), ("x",)),  # np.ones and np.eye, a length no array gives
        ("x_i x_j", ("x,x",), ("x",)),  # a constant Hessian: δ's
    ],
)
def test_float32_in_float32_out_computed_in_float32(text, chains, names) -> None:
    code = ix.codegen(ix.parse(text), *chains)
    arrays64 = {n: _data()[n] for n in names}
    arrays32 = {n: a.astype(np.float32) for n, a in arrays64.items()}
    sizes = {"n_i": 2} if "n_i" in code else {}
    recording = _Recording()
    got = _module(code, recording)["evaluate"](**arrays32, **sizes)
    wants = _references(text, chains, arrays64, {"i": 2} if sizes else None)
    for g, want in zip(got, wants, strict=True):
        assert isinstance(g, np.ndarray) and g.dtype == np.float32, (g, code)
        np.testing.assert_allclose(g, want, rtol=2e-4, atol=1e-4)
    assert set(recording.dtypes) <= {np.dtype(np.float32)}  # no float64 on the way (the einsums it calls)


def test_the_module_computes_in_the_dtype_ix_evaluate_does() -> None:
    e = ix.parse("x_i A_ij x_j")
    module = _module(ix.codegen(e))
    ints, halfs = np.arange(3), np.ones((3, 3), dtype=np.float32)
    for arrays in ({"x": ints, "A": ints[:, None] * ints}, {"x": ints, "A": halfs}, {"x": [1, 2, 3], "A": halfs}):
        got = module["evaluate"](**arrays)
        want = ix.evaluate(e, {n: np.asarray(a) for n, a in arrays.items()})
        assert got.dtype == want.dtype and np.allclose(got, want), (arrays, got.dtype, want.dtype)


def test_a_lower_derivative_only_the_self_check_needs_is_a_function_of_its_own() -> None:
    code = ix.codegen(ix.parse(LOGISTIC), "w,w")
    module = _module(code)
    arrays = {n: _data()[n] for n in ("X", "y", "w")}
    value, hessian = module["evaluate"](**arrays)
    assert "def _e1(" in code and code.count("def _e") == 1
    wants = _references(LOGISTIC, ("w", "w,w"), arrays)
    np.testing.assert_allclose(module["_FUNCTIONS"][("w",)](**arrays), wants[1], rtol=1e-12)
    np.testing.assert_allclose(hessian, wants[2], rtol=1e-12)
    assert all(ok for ok, _ in module["check"](arrays).values())


def test_temporaries_never_take_a_tensors_name() -> None:
    text = "sum_i(exp(t0_i value_i) + exp(t0_i value_i)^2)"
    code = ix.codegen(ix.parse(text), "t0")
    assert re.search("^    t1 = ", code, re.M) and not re.search("^    t0 = ", code, re.M), code
    arrays = {"t0": np.linspace(0.1, 0.5, 3), "value": np.linspace(-1, 1, 3)}
    got = _module(code)["evaluate"](**arrays)
    for g, want in zip(got, _references(text, ("t0",), arrays), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-12)


@pytest.mark.parametrize(
    ("text", "chains"),
    [(LOGISTIC, ("w", "w,w")), (GAUSSIAN, ("m", "S", "m,m")), (MLP, ("W1", "w2", "b2"))],
)
def test_modules_still_check_themselves_when_run(tmp_path, text, chains) -> None:
    path = tmp_path / "generated.py"
    path.write_text(ix.codegen(ix.parse(text), *chains), encoding="utf-8")
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.count(": ok") == len(chains), run.stdout + run.stderr


def _mlp_arrays(dtype=np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    shapes = {"W1": (5, 4), "x": (7, 4), "b1": (5,), "w2": (5,), "b2": (), "y": (7,)}
    return {n: rng.normal(size=s).astype(dtype) for n, s in shapes.items()}


def test_program_module_shares_within_its_statements_and_keeps_float32() -> None:
    program = ix.parse(MLP)
    code = ix.codegen(program, "W1", "w2")
    gradients = code[code.index("def gradients(") : code.index("def _richardson(")]
    assert gradients.count("(y * z2)") == 1, gradients  # the loss's margin, reused by dz2
    assert gradients.count("(x @ W1.T)") == 1
    want = ix.compile(ix.grad(program, None, ["W1", "w2"]))(**_mlp_arrays())
    recording = _Recording()
    module = _module(code, recording)
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-4)):
        got = module["gradients"](**_mlp_arrays(dtype))
        for g, w in zip(got, want, strict=True):
            assert np.asarray(g).dtype == dtype
            np.testing.assert_allclose(g, w, rtol=tolerance, atol=tolerance)


def _run_lines(code: str, arrays: dict) -> dict:
    namespace = {"np": np, **arrays}
    for line in code.splitlines():
        exec(line, namespace)  # noqa: S102 - the code under test, one statement a line
    return namespace


@pytest.mark.parametrize("wrt", [("W1",), ("W1", "b2", "w2")])
def test_einsum_of_a_programs_gradient_computes_the_forward_pass_once(wrt) -> None:
    program = ix.parse(MLP)
    for code in (ix.codegen(program, *wrt, format="einsum"), ix.codegen(ix.grad(program, None, wrt), format="einsum")):
        lines = code.splitlines()
        assigned = [line.split(" = ")[0] for line in lines]
        assert len(assigned) == len(set(assigned)), code  # every statement once
        forward = lines[: assigned.index("L") + 1]
        backward = lines[assigned.index("L") + 1 :]
        assert [line.split(" = ")[0] for line in forward] == ["z1", "h1", "z2", "L"], code
        assert not any("'ij,bj->bi'" in line or "np.tanh(" in line for line in backward), code  # by name only
        assert any("h1" in line for line in backward) and any("z2" in line for line in backward)
        namespace = _run_lines(code, _mlp_arrays())
        want = ix.compile(ix.grad(program, None, list(wrt)))(**_mlp_arrays())
        for name, w in zip(("L", *(f"d{v}" for v in wrt)), want, strict=True):
            np.testing.assert_allclose(namespace[name], w, rtol=1e-12, atol=1e-12)


def test_program_module_makes_its_arrays_in_the_inputs_dtype() -> None:
    program = ix.parse("h_bi = tanh(W_ij x_bj) + sum_k(δ_kk)\nL = sum_bi(h_bi h_bi)")
    code = ix.codegen(program, "W")
    module = _module(code)
    rng = np.random.default_rng(4)
    W, x = rng.normal(size=(2, 3)), rng.normal(size=(4, 3))
    want = ix.compile(ix.grad(program, None, ["W"]), dims={"k": 2})(W=W, x=x)
    for dtype, tolerance in ((np.float32, 1e-4), (np.float64, 1e-12)):
        got = module["gradients"](W=W.astype(dtype), x=x.astype(dtype), n_k=2)
        for g, w in zip(got, want, strict=True):
            assert np.asarray(g).dtype == dtype, code
            np.testing.assert_allclose(g, w, rtol=tolerance, atol=tolerance)
