"""Your own element-wise functions: erf and the exact GELU, u Φ(u), registered with ix.function, then a GELU layer's
loss differentiated once and twice, compiled, checked, and written out as a numpy module."""

import math
import types

import numpy as np
from _verify import compare, finish, report_check, show

import indexdiff as ix

SQRT_HALF = 1 / math.sqrt(2)
# numpy has no erf; scipy.special.erf is a fast one. Python's math.erf, element by element, needs nothing else.
erf_numpy = np.vectorize(math.erf, otypes=[float])


def gelu_numpy(a: np.ndarray) -> np.ndarray:
    return 0.5 * a * (1 + erf_numpy(SQRT_HALF * a))


def main() -> None:
    # erf'(u) = 2/√π exp(-u²); gelu'(u) = Φ(u) + u φ(u), with Φ(u) = (1 + erf(u/√2))/2 and φ(u) = exp(-u²/2)/√(2π).
    # Constants are numbers (a name such as pi would be a tensor).
    ix.function("erf", numpy=erf_numpy, derivative="1.1283791670955126 exp(-u^2)")
    ix.function(
        "gelu",
        numpy=gelu_numpy,
        derivative="0.5 (1 + erf(0.7071067811865476 u)) + 0.3989422804014327 u exp(-0.5 u^2)",
        latex=r"\operatorname{GELU}",
    )
    loss = ix.parse("L = sum_b((v_i gelu(W_ij x_bj) - y_b)^2)")
    grad_W = ix.diff(loss, "W")
    hess_v = ix.diff(loss, "v", "v")
    show([("L", loss), ("dL/dW", grad_W), ("d2L/dv dv", hess_v)])
    print("LaTeX:", ix.codegen(loss, format="latex"), "\n")

    rng = np.random.default_rng(0)
    B, n, d = 32, 5, 3
    W, x, v, y = rng.normal(size=(n, d)), rng.normal(size=(B, d)), rng.normal(size=n), rng.normal(size=B)
    data = {"W": W, "x": x, "v": v, "y": y}
    failures: list[str] = []

    # numpy by hand, with Φ and φ written out (not through indexdiff's registry)
    z = x @ W.T
    cdf = 0.5 * (1 + erf_numpy(SQRT_HALF * z))
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    h = z * cdf
    r = h @ v - y
    value, dW, dv, hv = ix.compile(loss, grad_W, ix.diff(loss, "v"), hess_v)(**data)
    print(f"numpy by hand ({B} samples, {n} GELU units):")
    compare("loss", np.asarray(value), np.asarray(np.sum(r**2)), failures, width=40)
    compare("dL/dW = 2 (r v_i gelu'(z_bi)) x_bj", dW, 2 * (r[:, None] * v * (cdf + z * pdf)).T @ x, failures, width=40)
    compare("dL/dv = 2 h^T r", dv, 2 * h.T @ r, failures, width=40)
    compare("d2L/dv dv = 2 h^T h", hv, 2 * h.T @ h, failures, width=40)
    # gelu'' through the registry (the derivative's derivative uses erf's): against central differences
    report_check("dL/dW, then d/dx of it", ix.check(loss, "W", "x", arrays=data), failures)

    # The generated module calls gelu and erf by name. Defined in an importable module, they would be imported;
    # defined here (a script), the module says to assign them before use.
    code = ix.codegen(loss, "W", "v,v")
    module = types.ModuleType("generated")
    exec(code, module.__dict__)  # noqa: S102 - our own generated code
    module.erf, module.gelu = erf_numpy, gelu_numpy
    ok = all(passed for passed, _ in module.check(data).values())
    print(f"  generated module's own check (its gelu and erf assigned): {'ok' if ok else 'FAILED'}")
    if not ok:
        failures.append("generated module check")
    finish(failures, "GELU layer: the derivatives agree with numpy by hand, central differences and the module.")


if __name__ == "__main__":
    main()
