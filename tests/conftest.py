"""Shared test fixtures: precision never leaks from one test into the next."""

import flint
import mpmath
import pytest


@pytest.fixture(autouse=True)
def _reset_precision():
    """Restore mpmath (dps 15 / prec 53) and python-flint (prec 53) defaults after each test."""
    yield
    mpmath.mp.dps = 15
    mpmath.mp.prec = 53
    flint.ctx.prec = 53


#: The bounded form of the catalog run (default tier): known-false claims of every engine
#: (violated, with a counterexample; the sampled ones Arb-checked), one claim of each
#: engine and of each verdict (certified by Arb, proved symbolically, sampled, callable,
#: Monte Carlo, power law), two kernel validations. The whole catalog runs in the slow
#: tier (``pytest -m slow``, run by .ci/run).
BOUNDED_CLAIMS = (
    "false_nash_md_linear_rate", "false_scaling_law_without_floor",
    "false_dpo_policy_optimal_for_js", "false_kde_clt_at_kl_optimum",
    "false_hg_bound_quarter_constant", "false_sheena_second_order_sign", "false_chi2_le_kl",
    "false_pinsker_constant", "nonneg_jeffreys", "dphrl_js_loss_is_twice_js",
    "renyi_monotone", "kde_clt_crossover", "plugin_kl_rate", "kt_regret_half_log_n",
    "kernel_kl", "kernel_reverse_kl",
)


def _catalog_run(claims):
    import contextlib
    import io
    import json
    import time

    from proofs_check.cli import main

    buf = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        status = main(["check", "--json", *(["--claim", *claims] if claims else [])])
    seconds = time.perf_counter() - start
    mpmath.mp.dps = 15
    flint.ctx.prec = 53
    return status, json.loads(buf.getvalue()), seconds


@pytest.fixture(scope="session")
def full_catalog_run():
    """Run ``divkit check --json`` on the whole default catalog once per test session.

    Returns ``(exit_status, verdicts, seconds)`` with ``verdicts`` the parsed JSON list.
    """
    return _catalog_run(None)


@pytest.fixture(scope="session")
def bounded_catalog_run():
    """``divkit check --json --claim ...`` on :data:`BOUNDED_CLAIMS`, once per session;
    ``(exit_status, verdicts, seconds)``."""
    return _catalog_run(list(BOUNDED_CLAIMS))
