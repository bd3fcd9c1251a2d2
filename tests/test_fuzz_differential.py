"""Differential fuzzer: random well-formed expressions and programs, every route against the reference evaluator.

Each case (from ``strategies.rich_case`` and ``strategies.program``) is printed and parsed back, evaluated with
``ix.evaluate`` (the reference) and with ``ix.compile`` (float64 and float32), the einsum code and the generated
Python module; its first and second derivatives by random variables go through the same routes and are compared
with central differences (see ``fuzz_routes.py``).

The default run is derandomized and bounded (a few hundred cases, about 30 s on 2 cores). A longer, randomized
run: ``INDEXDIFF_FUZZ=long pytest tests/test_fuzz_differential.py`` (``INDEXDIFF_FUZZ_EXAMPLES=N`` sets the
number of cases per test, 2000 by default in the long run).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from fuzz_routes import check_expression, check_program, used_inputs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from strategies import program, rich_case

import indexdiff as ix

LONG = os.environ.get("INDEXDIFF_FUZZ") == "long"


def _settings(examples: int) -> settings:
    if LONG:
        examples = int(os.environ.get("INDEXDIFF_FUZZ_EXAMPLES", "2000"))
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not LONG,
        database=None,
        print_blob=True,
        # Shrinking a failure costs minutes at ~0.1 s per example: the default run reports the first failure as
        # found; the long run shrinks.
        phases=list(Phase) if LONG else [Phase.explicit, Phase.reuse, Phase.generate],
    )


def _wrt(data: st.DataObject, variables: dict[str, int]) -> tuple[str, str] | tuple[()]:
    names = sorted(variables)
    if not names:
        return ()
    return data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))


@_settings(150)
@given(rich_case(), st.data())
def test_expressions_agree_on_every_route(text: str, data: st.DataObject) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in exp(exp(...)): such cases are skipped
        check_expression(text, _wrt(data, ix.parse(text).variables))


@_settings(50)
@given(program(), st.data())
def test_programs_agree_on_every_route(text: str, data: st.DataObject) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_program(text, _wrt(data, used_inputs(ix.parse(text))))


def test_the_fuzzer_catches_a_wrong_derivative() -> None:
    """The checks are not vacuous: a derivative off by a factor fails against central differences."""
    from fuzz_routes import RouteError, check_against_differences

    e = ix.parse("sum_i(u_i^3)")
    arrays = {"u": np.array([0.5, 1.0, 1.5])}
    wrong = 2 * arrays["u"] ** 2  # the right one is 3 u^2
    try:
        check_against_differences("sum_i(u_i^3)", "d/du", wrong, lambda a: ix.evaluate(e, a), arrays, "u")
    except RouteError:
        return
    raise AssertionError("a wrong derivative passed")
