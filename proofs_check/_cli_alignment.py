"""divkit derive alignment NAME: the alignment forms of theory.alignment, as a table.

``NAME`` is a catalog f-divergence (its f-DPO logit and KKT maps, f-DPG pseudo-rewards and
DPH-RL loss), ``d2o`` or ``nash_mp``. Examples::

    divkit derive alignment kl
    divkit derive alignment alpha --param alpha=1/3 --latex
    divkit derive alignment nash_mp --json

Parameter values go through the whitelist parser (theory.parsing).
"""

from __future__ import annotations

import argparse

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Execute ``divkit derive alignment NAME``; returns the exit status."""
    from proofs_check._cli_derive import SOLVE_BUDGET, _OverBudget, _params, _within, render
    from theory import alignment, fdiv

    if args.expr is not None:
        raise ValueError("derive alignment takes a catalog NAME, not --f")
    if args.target is None:
        raise ValueError("give a NAME: a catalog f-divergence (" + ", ".join(fdiv.names())
                         + ") or one of " + ", ".join(alignment.DERIVE_EXTRA))
    params = _params(args.param)
    # a decimal value (beta=0.3): the policy ratio (sympy.solve) gets SOLVE_BUDGET seconds
    if any(any(c in v for c in ".eE") for v in params.values()):
        try:
            rows = _within(SOLVE_BUDGET, lambda: alignment.derivations(args.target, **params))
        except _OverBudget:
            rows = alignment.derivations(args.target, solve=False, **params)
    else:
        rows = alignment.derivations(args.target, **params)
    head = {"name": args.target, "convention": "policy first: D_f(pi || pi_ref), u = pi/pi_ref"}
    return render(rows, head, f"alignment forms of {args.target}:  policy first, "
                  "D_f(pi||pi_ref), u = pi/pi_ref", json_out=args.json, latex=args.latex)
