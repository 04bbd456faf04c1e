"""Verification engines: symbolic proof, certified Arb branch-and-bound, high-precision
sampling with local search, and Monte Carlo with confidence intervals.

:func:`proofs_check.claims.verify` chooses among them; each engine is usable on its own.
"""
