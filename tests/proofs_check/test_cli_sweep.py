"""``divkit sweep``: kernel accuracy and claims over a parameter grid (issue 22)."""

from __future__ import annotations

import json
import time

import pytest
import sympy

from proofs_check._cli_sweep import parse_grid
from proofs_check.cli import main


def _sweep(capsys, *argv):
    status = main(["sweep", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_grid_syntax():
    name, values = parse_grid("beta=0:1:21")
    assert name == "beta" and len(values) == 21
    assert values[0] == 0 and values[-1] == 1 and values[7] == sympy.Rational(7, 20)
    assert parse_grid("alpha=-1/2,2")[1] == [sympy.Rational(-1, 2), 2]


@pytest.mark.parametrize("text", ["beta", "beta=1:0:3", "beta=0:1:1", "beta=0:1", "=1,2",
                                  "beta=x", "beta=0:1:2.5"])
def test_bad_grids_are_usage_errors(capsys, text):
    assert main(["sweep", "kernel", "js", "--param", text]) == 2
    assert "--param" in capsys.readouterr().err


def test_kernel_accuracy_over_beta(capsys, tmp_path):
    plot = tmp_path / "js.png"
    status, rows = _sweep(capsys, "kernel", "js", "--param", "beta=1/4,3/4", "--workers", "1",
                          "--plot", str(plot))
    assert status == 0
    assert [r["value"] for r in rows] == ["1/4", "3/4"]
    assert all(r["status"] == "consistent" and 0 < r["margin_value"] <= 1 for r in rows)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_parameter_the_family_does_not_have_is_a_usage_error(capsys):
    assert main(["sweep", "kernel", "js", "--param", "alpha=0:1:3"]) == 2
    assert "beta" in capsys.readouterr().err


def test_claim_over_seeds_does_not_depend_on_the_worker_count(capsys):
    args = ["claim", "plugin_kl_rate", "--param", "seed=0,1,2"]
    _, one = _sweep(capsys, *args, "--workers", "1")
    _, two = _sweep(capsys, *args, "--workers", "2")
    for rows in (one, two):
        for r in rows:
            r.pop("elapsed")
    assert one == two
    assert len({r["margin"] for r in one}) == 3          # each seed its own draws
    assert all(r["status"] == "consistent" for r in one)


def test_claim_sweeps_take_seed_or_budget_only(capsys):
    assert main(["sweep", "claim", "pinsker", "--param", "beta=0:1:3"]) == 2
    assert main(["sweep", "claim", "pinsker", "--param", "seed=-1,2"]) == 2


@pytest.mark.slow
def test_js_kernel_accuracy_over_21_betas_under_20_seconds(capsys):
    start = time.perf_counter()
    status, rows = _sweep(capsys, "kernel", "js", "--param", "beta=0:1:21")
    seconds = time.perf_counter() - start
    assert status == 0 and len(rows) == 21
    assert seconds < 20, seconds
