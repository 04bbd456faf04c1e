"""The claim catalog: contents, sources, and the verdicts of the known-false claims."""

import flint
import pytest
import sympy

from proofs_check import catalog, reference
from proofs_check.claims import STATUSES, Claim


def test_catalog_size_sources_and_expected_verdicts():
    entries = catalog.entries()
    assert len(entries) >= 25
    names = [e.name for e in entries]
    assert len(names) == len(set(names))
    for e in entries:
        assert e.source and len(e.source) > 10, e.name
        assert e.expected in STATUSES, e.name
        assert e.tags, e.name
    false = [e for e in entries if "false" in e.tags]
    assert len(false) >= 6
    assert all(e.expected == "violated" for e in false)
    assert sum(e.expected in ("certified", "proved") for e in entries) >= 8
    issue_items = ["nonneg_kl", "pinsker", "bretagnolle_huber", "le_cam_lower", "le_cam_upper",
                   "chi2_ge_kl", "kl_le_log1p_chi2", "js_le_log2", "tv_le_1", "renyi_monotone",
                   "data_processing_kl", "joint_convexity_kl", "log_sum_two_terms",
                   "fenchel_young_kl", "kkt_map_kl", "gaussian_kl_closed_form",
                   "xu_raginsky_gaussian_mean"]  # fmt: skip
    assert set(issue_items) <= set(names)


def test_every_catalog_generator_has_its_nonnegativity_and_fenchel_young_claims():
    from theory import fdiv

    names = set(catalog.names())
    for n in fdiv.names():
        assert f"nonneg_{n}" in names
        assert f"fenchel_young_{n}" in names


def test_selection_by_name_and_tag():
    assert [e.name for e in catalog.select(["pinsker"])] == ["pinsker"]
    assert all("false" in e.tags for e in catalog.select(tags=["false"]))
    with pytest.raises(ValueError, match="did you mean pinsker"):
        catalog.select(["pinskr"])
    with pytest.raises(ValueError, match="unknown tag"):
        catalog.select(tags=["no-such-tag"])


def test_xu_raginsky_closed_form_against_independent_integration():
    # gen = E[l(W, Z')] - E[l(W, Z_1)] for the Gaussian loss: check both expectations by
    # direct Gaussian integrals with mpmath (independent of the algebra in the catalog)
    import mpmath

    gen, mi, bound = catalog.xu_raginsky_terms()
    n, sig, s, tau = 5, mpmath.mpf(1), mpmath.mpf("0.5"), mpmath.mpf(1)
    with mpmath.workdps(30):
        def expect_loss(var):  # E[1 - exp(-X^2/(2 tau^2))], X ~ N(0, var)
            dens = lambda x: mpmath.npdf(x, 0, mpmath.sqrt(var))  # noqa: E731
            return mpmath.quad(lambda x: (1 - mpmath.exp(-x**2 / (2 * tau**2))) * dens(x),
                               [-mpmath.inf, 0, mpmath.inf])  # fmt: skip
        want = expect_loss(sig**2 * (n + 1) / n + s**2) - expect_loss(sig**2 * (n - 1) / n + s**2)
        got = reference.evaluate(gen, {"n": n, "sigma": 1, "s": "0.5", "tau": 1}, dps=30)
        assert abs(got - want) < mpmath.mpf(10) ** -20
        assert reference.evaluate(bound - gen, {"n": n, "sigma": 1, "s": "0.5", "tau": 1}) > 0


def _violation_ball(claim: Claim, point: dict) -> flint.arb:
    st = claim.statement
    if isinstance(st, sympy.Equality):
        return -abs(reference.ball(st.lhs - st.rhs, point, dps=40))
    lhs, rhs = st.lhs, st.rhs
    if isinstance(st, sympy.GreaterThan | sympy.StrictGreaterThan):
        lhs, rhs = rhs, lhs
    return reference.ball(rhs - lhs, point, dps=40)


def _known_false_are_violated(verdicts):
    false = {e.name for e in catalog.entries() if "false" in e.tags}
    checked = [v for v in verdicts if v["claim"] in false]
    assert len(checked) >= 6
    for v in checked:
        name = v["claim"]
        assert v["status"] == "violated", (name, v["detail"])
        assert v["counterexample"], name
        claim = catalog.get(name)
        if not isinstance(claim, Claim):
            continue  # numeric claims (callable, Monte Carlo, power-law) have no formula to ball
        b = _violation_ball(claim, v["counterexample"])  # fresh evaluation with Arb
        assert b < 0, (name, b)
        assert abs(b.mid()) > b.rad(), (name, b)
    return checked


def test_known_false_claims_are_violated_with_arb_checked_counterexamples(bounded_catalog_run):
    checked = _known_false_are_violated(bounded_catalog_run[1])
    assert any(isinstance(catalog.get(v["claim"]), Claim) for v in checked)  # an Arb ball


@pytest.mark.slow
def test_every_known_false_claim_is_violated(full_catalog_run):
    checked = _known_false_are_violated(full_catalog_run[1])
    assert len(checked) == sum("false" in e.tags for e in catalog.entries())


def _verdicts_equal_expected(status, verdicts):
    wrong = [(v["claim"], v["status"], v["expected"], v["detail"][:200]) for v in verdicts
             if not v["ok"]]  # fmt: skip
    assert not wrong
    for v in verdicts:
        if v["status"] == "certified":
            assert v["engine"] == "certified"
        if v["status"] == "violated":
            assert v["counterexample"] is not None
    assert status == (0 if all(v["ok"] for v in verdicts) else 1)


def test_bounded_catalog_verdicts_equal_expected(bounded_catalog_run):
    status, verdicts, _seconds = bounded_catalog_run
    _verdicts_equal_expected(status, verdicts)
    # every engine and every verdict of the catalog is exercised
    assert {v["engine"] for v in verdicts} >= {"certified", "symbolic", "sampling", "callable",
                                               "montecarlo", "power-law"}
    assert {v["status"] for v in verdicts} == {"certified", "proved", "consistent", "violated"}


@pytest.mark.slow
def test_full_catalog_verdicts_equal_expected(full_catalog_run):
    status, verdicts, seconds = full_catalog_run
    assert len(verdicts) == len(catalog.names())
    assert seconds < 180
    _verdicts_equal_expected(status, verdicts)
    reached = [v for v in verdicts if v["status"] in ("certified", "proved")]
    assert len(reached) >= 8


@pytest.mark.slow
def test_every_kernel_validation_is_consistent(full_catalog_run):
    # every catalog f, numeric.divergence vs the 50-digit reference (nearly equal rows included)
    _status, verdicts, _s = full_catalog_run
    kernels = [v for v in verdicts if v["claim"].startswith("kernel_")]
    from theory import fdiv

    assert {v["claim"] for v in kernels} == {f"kernel_{n}" for n in fdiv.names()}
    assert all(v["status"] == "consistent" for v in kernels), [
        (v["claim"], v["detail"][:120]) for v in kernels if v["status"] != "consistent"]
