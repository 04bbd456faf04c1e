"""proofs_check.rates: power-law fits and PowerLawClaim verdicts."""

import time

import numpy as np
import pytest

from numeric.tolerances import assert_close
from proofs_check.rates import PowerLawClaim, fit_power_law

SRC = "test source (synthetic power law)"


def test_exact_power_law_recovered_exactly():
    ns = np.array([4, 8, 16, 32, 64])
    fit = fit_power_law(ns, -2.5 * ns**-1.5, rate=1.5)
    assert fit.exact
    assert_close(fit.rate, 1.5, rtol=1e-12)
    assert_close(fit.constant, -2.5, rtol=1e-12)
    assert_close(fit.constant_at_rate, -2.5, rtol=1e-12)
    assert fit.rate_interval[0] <= 1.5 + 1e-12 and fit.rate_interval[1] >= 1.5 - 1e-12


def test_exact_values_with_a_correction_term_converge_from_the_tail():
    # v_n = n^-1 + 3 n^-2: the last local slope is 1 + O(1/n), the hull shrinks towards 1
    ns = np.array([100, 200, 400, 800, 1600])
    fit = fit_power_law(ns, 1 / ns + 3 / ns**2)
    want_last = -np.log((1 / 1600 + 3 / 1600**2) / (1 / 800 + 3 / 800**2)) / np.log(2)
    assert_close(fit.rate, want_last, rtol=1e-12)
    assert 1.0 < fit.rate_interval[0] < fit.rate_interval[1] < 1.02


def test_monte_carlo_fit_covers_the_truth_and_scales_with_noise():
    rng = np.random.default_rng(5)
    ns = np.array([10, 20, 40, 80, 160, 320])
    truth = 0.7 * ns**-1.0
    se = 0.01 * truth
    hits = 0
    for _ in range(50):
        fit = fit_power_law(ns, truth + se * rng.standard_normal(ns.size), se, rate=1.0,
                            confidence=0.99)  # fmt: skip
        hits += fit.rate_interval[0] <= 1.0 <= fit.rate_interval[1]
        assert fit.constant_at_rate_interval[0] < 0.7 * 1.02
        assert fit.constant_at_rate_interval[1] > 0.7 * 0.98
    assert hits >= 45  # 99 % intervals: P(hits < 45) < 1e-4 when the fit is right


@pytest.mark.parametrize(
    "ns, values, stderr, match",
    [
        ([0, 1, 2], [1, 1, 1], None, "n ≥ 1"),
        ([1, 2], [1, 1], None, "at least three"),
        ([1, 3, 2], [1, 1, 1], None, "increasing"),
        ([1, 2, 3], [1, -1, 1], None, "change sign"),
        ([1, 2, 3], [1, 0, 1], None, "nonzero"),
        ([1, 2, 3], [1, 1], None, "shape"),
        ([1, 2, 3], [1, 1, 1], [0.1, -0.1, 0.1], "stderr"),
        ([1, 2, 3], [1, 1, 1], [0.1, 0.0, 0.1], "all zero"),
    ],
)
def test_bad_input(ns, values, stderr, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(ns, values, stderr)


def test_power_law_claim_verdicts_exact():
    def quantity(n, rng):
        return 4.0 / n**2, 0.0

    ok = PowerLawClaim("q2", quantity, ns=[10, 20, 40, 80], rate=2, rate_tol=0.01, constant=4,
                       constant_rtol=0.01, source=SRC, expected="consistent").check()  # fmt: skip
    assert (ok.status, ok.ok) == ("consistent", True)
    bad_rate = PowerLawClaim("q1", quantity, ns=[10, 20, 40, 80], rate=1, rate_tol=0.1, source=SRC,
                             expected="violated").check()  # fmt: skip
    assert bad_rate.status == "violated"
    assert "rate interval misses" in bad_rate.detail
    bad_c = PowerLawClaim("qc", quantity, ns=[10, 20, 40, 80], rate=2, rate_tol=0.1, constant=5,
                          constant_rtol=0.05, source=SRC, expected="violated").check()  # fmt: skip
    assert bad_c.status == "violated"
    assert "constant interval misses" in bad_c.detail


def test_power_law_claim_monte_carlo_needs_two_failing_runs():
    def quantity(n, rng):
        x = rng.exponential(1.0 / n, 4000)  # mean exactly 1/n
        return x.mean(), x.std(ddof=1) / np.sqrt(x.size)

    good = PowerLawClaim("mc", quantity, ns=[10, 30, 100, 300], rate=1, rate_tol=0.05,
                         constant=1, constant_rtol=0.05, source=SRC, expected="consistent")  # fmt: skip
    assert good.check(seed=3).status == "consistent"
    bad = PowerLawClaim("mc_bad", quantity, ns=[10, 30, 100, 300], rate=0.5, rate_tol=0.05,
                        source=SRC, expected="violated").check(seed=3)  # fmt: skip
    assert bad.status == "violated"
    assert bad.counterexample["recheck_seed"] == 3 + 1_000_003


def test_power_law_claim_budget_and_arguments():
    def slow(n, rng):
        time.sleep(0.05)
        return 1.0 / n, 0.0

    v = PowerLawClaim("slow", slow, ns=[1, 2, 3, 4, 5], rate=1, rate_tol=0.1, source=SRC,
                      expected="consistent").check(budget=0.08)  # fmt: skip
    assert v.status == "inconclusive"
    with pytest.raises(ValueError, match="rate_tol"):
        PowerLawClaim("x", slow, ns=[1, 2, 3], rate=1, rate_tol=0, source=SRC, expected="consistent")
    with pytest.raises(ValueError, match="both constant"):
        PowerLawClaim("x", slow, ns=[1, 2, 3], rate=1, rate_tol=0.1, constant=1, source=SRC,
                      expected="consistent")  # fmt: skip
    with pytest.raises(ValueError, match="n ≥ 1"):
        PowerLawClaim("x", slow, ns=[0, 2, 3], rate=1, rate_tol=0.1, source=SRC, expected="consistent")
