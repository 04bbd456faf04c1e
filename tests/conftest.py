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
