"""Input errors of the divkit commands are usage errors with one clear line (issue 19 item 12)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proofs_check import _cli_budget
from proofs_check.cli import main


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_a_huge_memory_limit_is_a_usage_error_not_an_overflow(capsys):
    line = _usage_error(capsys, ["check", "--claim", "tv_le_1",
                                 "--memory-limit", "99999999999999999999T"])
    assert "memory limit 99999999999999999999T is too large" in line
    assert "Overflow" not in line


def test_a_tiny_memory_limit_is_a_usage_error_not_an_import_error(capsys):
    line = _usage_error(capsys, ["check", "--claim", "tv_le_1", "--memory-limit", "10M"])
    assert "memory limit 10M is too small: at least 512M" in line
    assert "ImportError" not in line


def test_memory_limit_bounds():
    assert _cli_budget.parse_memory("512M") == _cli_budget.MIN_MEMORY == 512 * 2**20
    assert _cli_budget.parse_memory("1048576T") == _cli_budget.MAX_MEMORY
    assert _cli_budget.parse_memory("0") == 0
    assert _cli_budget.parse_memory("1.5G") == 3 * 2**29


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-2", "abc"])
def test_budget_must_be_finite_and_positive(capsys, value):
    line = _usage_error(capsys, ["check", "--claim", "tv_le_1", f"--budget={value}"])
    assert "argument --budget: expected a finite positive number of seconds" in line


@pytest.mark.parametrize("value", ["-1", "1.5", "x"])
def test_seed_must_be_a_nonnegative_integer(capsys, value):
    line = _usage_error(capsys, ["check", "--claim", "plugin_kl_rate", "--seed", value])
    assert "argument --seed: expected an integer >= 0" in line


@pytest.mark.parametrize("argv, stray", [
    (["derive", "kl", "--family", "exponential"], "--family does not apply to derive kl"),
    (["derive", "kl", "--truth", "Gamma(2, 1)"], "--truth does not apply to derive kl"),
    (["derive", "--f", "u*log(u)", "--family", "poisson"], "--family does not apply"),
    (["derive", "risk", "--family", "poisson", "--f", "u"], "--f does not apply to derive risk"),
    (["derive", "risk", "--family", "poisson", "--param", "a=1"],
     "--param does not apply to derive risk"),
    (["derive", "alignment", "kl", "--family", "poisson"],
     "--family does not apply to derive alignment"),
    (["derive", "--list", "--json"], "--json does not apply to derive --list"),
])
def test_options_that_do_not_apply_are_usage_errors(capsys, argv, stray):
    line = _usage_error(capsys, argv)
    assert line.startswith(f"divkit derive: error: {stray}")


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_workers_must_be_positive(capsys, value):
    line = _usage_error(capsys, ["check", "--claim", "tv_le_1", "--workers", value])
    assert "argument --workers: expected a positive integer" in line


def test_workers_with_a_remote_scheduler_is_a_usage_error(capsys):
    assert main(["check", "--claim", "tv_le_1", "--workers", "2",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--workers applies to local processes" in capsys.readouterr().err


_OVERFLOW_SCRIPT = """
import sys
import numpy as np
from proofs_check import _cli_budget

def overflows(_args):
    x = np.float64(1e308) * np.float64(10.0)     # RuntimeWarning: overflow
    y = np.exp(np.array([1000.0]))               # RuntimeWarning: overflow in exp
    print(float(x), float(y[0]))
    return 0

sys.exit(_cli_budget.run_limited(overflows, None, command="check",
                                 time_limit={t}, memory_limit={m}))
"""


@pytest.mark.parametrize("limits", [(30, 2**31), (0, 0)])   # forked child, in-process
def test_runtime_warnings_do_not_reach_the_terminal(limits):
    # a subprocess: pytest's own warning capture would hide a leak
    proc = subprocess.run([sys.executable, "-c", _OVERFLOW_SCRIPT.format(t=limits[0], m=limits[1])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "inf inf"
    assert proc.stderr == ""


@pytest.mark.parametrize("command, line", [
    ("check", "    divkit check --tag false --json       # one JSON object per claim, as a JSON list"),
    ("derive", "    divkit derive alpha --param alpha=1/3 --latex"),
])
def test_helps_keep_their_usage_lines(capsys, command, line):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert line in capsys.readouterr().out.splitlines()
