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
import json

import sympy

from proofs_check import _cli_budget

__all__ = ["run"]


def _fmt(value, latex: bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, sympy.Basic):
        return sympy.latex(value) if latex else sympy.sstr(value)
    return str(value)


def run(args: argparse.Namespace) -> int:
    """Execute ``divkit derive alignment NAME``; returns the exit status."""
    from proofs_check._cli_derive import _params
    from theory import alignment, fdiv

    if args.expr is not None:
        raise ValueError("derive alignment takes a catalog NAME, not --f")
    if args.target is None:
        raise ValueError("give a NAME: a catalog f-divergence (" + ", ".join(fdiv.names())
                         + ") or one of " + ", ".join(alignment.DERIVE_EXTRA))
    rows = alignment.derivations(args.target, **_params(args.param))
    if args.json:
        payload = {"name": args.target, "convention": "policy first: D_f(pi || pi_ref), u = pi/pi_ref"}
        for key, _label, value in rows:
            entry = {"text": _fmt(value, False)}
            if isinstance(value, sympy.Basic):
                entry["latex"] = sympy.latex(value)
            payload[key] = entry
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    from rich.table import Table

    table = Table(title=f"alignment forms of {args.target}:  policy first, D_f(pi||pi_ref), "
                        "u = pi/pi_ref")
    table.add_column("quantity", style="bold")
    table.add_column("value", overflow="fold")
    for _key, label, value in rows:
        table.add_row(label, _fmt(value, args.latex))
    _cli_budget.console(width=140).print(table)
    return 0
