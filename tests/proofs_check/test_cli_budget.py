"""Time and memory budgets of the divkit commands (issue 14 item 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from proofs_check import _cli_budget
from proofs_check.cli import main


def test_time_limit_ends_a_runaway_derive_with_one_line(capsys):
    # sympy spends minutes on this generator (issue 14 item 6)
    start = time.monotonic()
    rc = main(["derive", "--f", "u**99999 - 1 - 99999*(u-1)", "--time-limit", "2"])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == _cli_budget.EXIT_BUDGET
    assert elapsed < 10
    assert err == ["divkit derive: error: time limit of 2 s exceeded (raise it with "
                   "--time-limit SECONDS)"]


def _allocate(_args):
    blocks = []
    while True:
        blocks.append(bytearray(64 * 2**20))


def test_memory_limit_is_reported_in_one_line(capsys):
    rc = _cli_budget.run_limited(_allocate, None, command="derive", time_limit=30,
                                 memory_limit=_cli_budget.parse_memory("1G"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == _cli_budget.EXIT_BUDGET
    assert err[-1] == ("divkit derive: error: memory limit of 1 GiB exceeded (raise it with "
                       "--memory-limit SIZE)")


def test_output_is_relayed_and_status_kept(capsys):
    rc = main(["derive", "kl", "--json"])
    out = capsys.readouterr().out
    assert rc == 0 and '"name": "kl"' in out


def test_usage_errors_still_name_the_problem(capsys):
    rc = main(["derive", "kll"])
    assert rc == 2
    assert "unknown divergence 'kll'" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["x", "-1", "4Q"])
def test_limits_are_validated(bad):
    with pytest.raises(SystemExit):
        main(["derive", "kl", "--time-limit", bad, "--memory-limit", bad])


# `divkit ... | head`: the reader goes away; no traceback, the status a shell gives a tool
# that SIGPIPE ended (128 + 13). The pipe's read end is closed before the command starts,
# so every write fails with EPIPE, deterministically.
@pytest.mark.parametrize("argv", [
    ["derive", "risk", "--family", "categorical:num_classes=2"],     # relayed by the parent
    ["derive", "risk", "--family", "poisson", "--json",               # in-process, print()
     "--time-limit", "0", "--memory-limit", "0"],
    ["derive", "kl", "--time-limit", "0", "--memory-limit", "0"],     # in-process, rich
])
def test_a_closed_pipe_ends_the_command_quietly(argv):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "proofs_check.cli", *argv],
                              stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141 == 128 + signal.SIGPIPE
