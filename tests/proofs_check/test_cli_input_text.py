"""The CLI's text inputs: parameters given as text, and truths the risk engine cannot take."""

from __future__ import annotations

import pytest
import sympy

from proofs_check import _cli_derive
from proofs_check.cli import main
from theory import fdiv, u


def test_boolean_parameter_from_text():
    # the CLI hands --param values to fdiv.get as text
    params = _cli_derive._params(["beta=3/10", "normalized=True"])
    d = fdiv.get("js", **params)
    beta = sympy.Rational(3, 10)
    m = beta * u + 1 - beta
    want = (beta * u * sympy.log(u) - m * sympy.log(m)) / (beta * (1 - beta))
    assert sympy.simplify(d.f - want) == 0
    assert fdiv.get("js", normalized="false").f == fdiv.get("js").f
    with pytest.raises(ValueError, match="true or false"):
        fdiv.get("js", normalized="maybe")


def test_risk_with_extreme_gamma_truth_is_a_clear_error(capsys):
    rc = main(["derive", "risk", "--family", "gamma", "--truth", "Gamma(1e300, 1e-300)"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc in (2, 3) and len(err) == 1 and err[0].startswith("divkit derive: error:")
