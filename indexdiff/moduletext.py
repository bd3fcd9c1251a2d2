"""The fixed text of every generated Python module: how it starts and ends, how it takes its arrays (in their
common float dtype) and its self-check (central differences with an error bound)."""

from __future__ import annotations

__all__ = ["CHECK", "FLOAT_ARRAYS", "SCRIPT_END", "SCRIPT_START", "matrix_data"]

#: How every generated module's code starts, after its docstring text.
SCRIPT_START = ('"""', "", "import sys", "", "import numpy as np", "")
#: How every generated module ends: main() reports failures through the exit status.
SCRIPT_END = ("    return 1 if failed else 0", "", "", 'if __name__ == "__main__":', "    sys.exit(main())", "")


#: How a generated module takes its arrays: in their common float dtype, as ix.evaluate computes.
FLOAT_ARRAYS = (
    "def _float_arrays(arrays):",
    '    """The arrays in their common float dtype, integers and booleans counting as float64 (as ix.evaluate',
    '    computes), and that dtype."""',
    "    arrays = {name: np.asarray(a) for name, a in arrays.items()}",
    "    floats = [a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64) for a in arrays.values()]",
    "    dtype = np.result_type(*floats) if floats else np.dtype(np.float64)",
    "    return {name: a.astype(dtype, copy=False) for name, a in arrays.items()}, dtype",
    "",
    "",
)

#: The self-check every generated module runs: Richardson-extrapolated central differences with an error bound.
CHECK = (
    "def _richardson(f, arrays, name):",
    '    """d f / d arrays[name] by central differences at steps h, h/2 and h/4, extrapolated twice (Richardson),',
    "    and a bound on their error: ten times the change of the last extrapolation (the truncation error left),",
    "    plus the rounding noise of f's values over the step. h starts at 1e-3 of the element and shrinks tenfold",
    '    (up to twice) while the bound is above 1e-6 of the derivative; the smallest bound wins."""',
    "    x = np.asarray(arrays[name], dtype=float)",
    "    base = np.asarray(f(**arrays), dtype=float)",
    "    noise = 100 * np.finfo(float).eps * float(np.max(np.abs(base), initial=0.0))",
    "    numeric, bound = np.zeros(base.shape + x.shape), np.zeros(base.shape + x.shape)",
    "",
    "    def worst(err):",
    "        return float(np.nan_to_num(np.max(err, initial=0.0), nan=np.inf))",
    "",
    "    def estimate(idx, h):",
    "        slopes = []",
    "        for k in range(3):",
    "            plus, minus = x.copy(), x.copy()",
    "            plus[idx] += h / 2**k",
    "            minus[idx] -= h / 2**k",
    "            width = plus[idx] - minus[idx]",
    "            up, down = f(**{**arrays, name: plus}), f(**{**arrays, name: minus})",
    "            slopes.append((np.asarray(up, dtype=float) - np.asarray(down, dtype=float)) / width)",
    "        coarse, fine = (4 * slopes[1] - slopes[0]) / 3, (4 * slopes[2] - slopes[1]) / 3",
    "        return fine, 10 * np.abs(fine - coarse) + noise / width",
    "",
    "    for idx in np.ndindex(*x.shape):",
    "        best = None",
    "        for level in range(3):",
    "            value, err = estimate(idx, 10.0 ** (-3 - level) * max(abs(float(x[idx])), 1e-3))",
    "            if best is None or worst(err) < worst(best[1]):",
    "                best = (value, err)",
    "            if np.all(err <= 1e-6 * np.max(np.abs(value), initial=0.0)):",
    "                break",
    "        numeric[(Ellipsis, *idx)], bound[(Ellipsis, *idx)] = best",
    "    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))",
    "    return numeric, bound + 1e-7 * np.abs(numeric) + 1e-12 * scale",
    "",
    "",
)


def matrix_data(square: dict[str, tuple[int, int]]) -> list[str]:
    """Lines of main() that make the random data of the tensors inv, det and logdet take well conditioned with a
    positive determinant, as ix.check does (``check.well_conditioned``)."""
    if not square:
        return []
    return [
        f"    for name, (p, q) in {square!r}.items():  # the identity plus a small part: diagonally dominant",
        "        a = arrays[name] / (2 * arrays[name].shape[p])",
        "        at = [slice(None)] * a.ndim",
        "        at[p] = at[q] = np.arange(a.shape[p])",
        "        a[tuple(at)] += 1.0",
        "        arrays[name] = a",
    ]
