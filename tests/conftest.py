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


@pytest.fixture(scope="session")
def full_catalog_run():
    """Run ``divkit check --json`` on the whole default catalog once per test session.

    Returns ``(exit_status, verdicts, seconds)`` with ``verdicts`` the parsed JSON list.
    """
    import contextlib
    import io
    import json
    import time

    from proofs_check.cli import main

    buf = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        status = main(["check", "--json"])
    seconds = time.perf_counter() - start
    mpmath.mp.dps = 15
    flint.ctx.prec = 53
    return status, json.loads(buf.getvalue()), seconds
