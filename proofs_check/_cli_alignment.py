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
    from proofs_check._cli_derive import _params, render
    from theory import alignment, fdiv

    if args.expr is not None:
        raise ValueError("derive alignment takes a catalog NAME, not --f")
    if args.target is None:
        raise ValueError("give a NAME: a catalog f-divergence (" + ", ".join(fdiv.names())
                         + ") or one of " + ", ".join(alignment.DERIVE_EXTRA))
    rows = alignment.derivations(args.target, **_params(args.param))
    head = {"name": args.target, "convention": "policy first: D_f(pi || pi_ref), u = pi/pi_ref"}
    return render(rows, head, f"alignment forms of {args.target}:  policy first, "
                  "D_f(pi||pi_ref), u = pi/pi_ref", json_out=args.json, latex=args.latex)
