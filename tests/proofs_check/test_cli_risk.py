"""``divkit derive risk`` (proofs_check._cli_risk), called directly with a Namespace."""

from __future__ import annotations

import argparse
import json

import pytest
import sympy
from sympy.stats import Gamma

from proofs_check import _cli_risk
from theory import asymptotics
from theory.parsing import ParseError


def call(capsys, **kw):
    ns = argparse.Namespace(**{"family": None, "truth": None, "json": False, "latex": False,
                               **kw})
    rc = _cli_risk.run(ns)
    return rc, capsys.readouterr().out


def test_json_matches_library(capsys):
    rc, out = call(capsys, family="exponential", truth="Gamma(2, 1/2)", json=True)
    assert rc == 0
    doc = json.loads(out)
    ref = asymptotics.mle_risk("exponential", truth=Gamma("X", 2, sympy.Rational(1, 2)))
    assert doc["family"] == "exponential" and doc["p"] == 1
    assert sympy.Rational(doc["c1"]) == ref.c1 == sympy.Rational(1, 4)
    assert sympy.Rational(doc["c2"]) == ref.c2
    assert [row["n"] for row in doc["table"]] == list(_cli_risk.TABLE_N)
    for row in doc["table"]:
        nv = row["n"]
        assert row["two_term_value"] == pytest.approx(float(ref.c1 / nv + ref.c2 / nv**2),
                                                      rel=1e-14)
        assert row["one_term_value"] == pytest.approx(float(ref.c1 / nv), rel=1e-14)
    assert doc["projection"] == {"rate": "1"}


def test_text_table(capsys):
    rc, out = call(capsys, family="exponential", truth="Gamma(2, 1/2)")
    assert rc == 0
    assert "c1 (n^-1) = 0.25" in out
    assert "3000" in out and "theta*" in out


def test_latex(capsys):
    rc, out = call(capsys, family="poisson", truth="Poisson(3)", latex=True)
    assert rc == 0
    assert r"c_1 = \frac{1}{2}" in out
    assert "O(n^{-3})" in out


def test_default_truth_is_symbolic_member(capsys):
    rc, out = call(capsys, family="poisson", json=True)
    doc = json.loads(out)
    assert rc == 0 and doc["c1"] == "1/2"
    rate = sympy.Symbol("rate", positive=True)
    assert sympy.simplify(sympy.sympify(doc["c2"], locals={"rate": rate})
                          - 5 / (12 * rate)) == 0


def test_family_with_fixed_parameters(capsys):
    rc, out = call(capsys, family="binomial:total_count=6", truth="Binomial(4, 1/3)",
                   json=True)
    doc = json.loads(out)
    assert rc == 0 and doc["fixed"] == {"total_count": "6"}
    assert doc["c1_value"] > 0


def test_symbolic_truth_parameters(capsys):
    rc, out = call(capsys, family="exponential", truth="Gamma(k, 1/k)", json=True)
    doc = json.loads(out)
    k = sympy.Symbol("k", positive=True)
    assert sympy.simplify(sympy.sympify(doc["c1"], locals={"k": k}) - 1 / (2 * k)) == 0


@pytest.mark.parametrize(
    "truth",
    [
        "Gamma(2, 1).__class__",
        "__import__('os')",
        "Gamma(2)",
        "Foo(1, 2)",
        "2*Gamma(2, 1)",
        "x",
        "Exponential(-1)",
    ],
)
def test_refuses_unsafe_or_bad_truth(capsys, truth):
    with pytest.raises(ValueError):
        call(capsys, family="exponential", truth=truth)


def test_parse_truth_is_whitelisted():
    with pytest.raises(ParseError, match="unknown name"):
        _cli_risk.parse_truth("sympify(1)")
    rv = _cli_risk.parse_truth("Gamma(2, 1/2)")
    assert str(type(rv).__name__) == "RandomSymbol"


def test_errors_are_value_errors(capsys):
    with pytest.raises(ValueError, match="support mismatch"):
        call(capsys, family="poisson", truth="Normal(0, 1)")
    with pytest.raises(ValueError, match="undefined"):
        call(capsys, family="normal", truth="Cauchy(0, 1)")
    with pytest.raises(ValueError, match="did you mean"):
        call(capsys, family="gama", truth="Gamma(2, 1)")
    with pytest.raises(ValueError, match="key=value"):
        call(capsys, family="binomial:total_count", truth="Bernoulli(1/2)")
