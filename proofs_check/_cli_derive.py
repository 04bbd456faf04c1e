"""divkit derive: every derived quantity of an f-divergence generator, or an MLE risk.

Examples::

    divkit derive js
    divkit derive alpha --param alpha=1/3 --latex
    divkit derive --f "(sqrt(u)-1)**2" --json
    divkit derive risk --family exponential --truth "Gamma(2, 1/2)"
    divkit derive alignment js --json

Expressions and parameter values go through the whitelist parser (theory.parsing).
"""

from __future__ import annotations

import argparse
import json

import sympy

from proofs_check import _cli_budget

__all__ = ["add_arguments", "run", "derived_quantities"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``divkit derive``."""
    parser.add_argument("name", nargs="?",
                        help="catalog name (see `divkit derive --list`), 'risk' or 'alignment'")
    parser.add_argument("target", nargs="?", metavar="NAME",
                        help="(alignment) a catalog name, 'd2o' or 'nash_mp'")
    parser.add_argument("--f", dest="expr", metavar="EXPR", help="a generator f(u) as text")
    parser.add_argument(
        "--param", action="append", default=[], metavar="K=V",
        help="parameter value, e.g. alpha=1/3 (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the catalog names")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    out.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--family", help="(risk) exponential family name, e.g. exponential")
    parser.add_argument("--truth", help="(risk) true distribution, e.g. 'Gamma(2, 1/2)'")


def _params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param expects K=V, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k.isidentifier() or "_" in k:
            raise ValueError(f"--param name {k!r} must be a plain name (letters and digits)")
        if k in out:
            raise ValueError(f"--param {k} given twice")
        out[k] = v.strip()
    return out


#: Seconds that the closed forms needing ``sympy.solve`` (the policy map and the convex
#: conjugate) may take at a decimal parameter value (``--param beta=0.3``) before their rows
#: say so instead: sympy's solve of f'(u) = t for one member (JS at beta = 3/10) can run
#: for minutes, and ``divkit derive`` answers any float within a couple of seconds. A
#: value written as a fraction (``alpha=1/3``) asks for the exact member: no budget but
#: ``--time-limit``.
SOLVE_BUDGET = 0.4


class _OverBudget(Exception):
    pass


def _within(seconds, fn):
    """``fn()``, or ``_OverBudget`` after ``seconds`` (a SIGALRM timer; without one, or off
    the main thread, ``fn()`` unbounded)."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return fn()

    def stop(signum, frame):
        raise _OverBudget

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def derived_quantities(d, *, budget: float | None = None) -> list[tuple[str, str, object]]:
    """(key, label, sympy value or text) rows describing an FDivergence.

    With a ``budget`` (seconds) the policy map and the conjugate (``sympy.solve``) get that
    long together; past it their rows say that no closed form was derived in time (the
    numeric kernels need none: they invert f' numerically)."""
    late = (f"not derived within {budget:g} s at this decimal parameter value (the numeric "
            "kernels invert f' without it)") if budget else ""
    policy_map = conj = None
    try:
        if budget:
            policy_map, conj = _within(budget, lambda: (d.policy_map, d.conjugate))
        else:
            policy_map, conj = d.policy_map, d.conjugate
    except _OverBudget:
        pass
    rows = [
        ("f", "f(u)", d.f),
        ("df", "f'(u) = reward map", d.df),
        ("d2f", "f''(u)", d.d2f),
        ("standardized", "f(u) - f'(1)(u - 1)", d.standardized),
        ("weighting", "u^2 f''(u) (f-distill weight)", d.weighting),
        ("f_at_zero", "f(0+)", d.f_at_zero),
        ("slope_at_infinity", "f'(oo) = lim f(u)/u", d.slope_at_infinity),
        ("df_at_zero", "f'(0+)", d.df_at_zero),
        ("fdpo_positive", "f-DPO positivity (f'(0+) = -oo)", d.fdpo_positive),
        ("policy_map", "(f')^-1(t) = policy map", policy_map if conj is not None else late),
        ("policy_domain", "domain of the policy map", d.policy_domain),
        ("conjugate", "f*(t)", late if conj is None else
         conj.expr if conj.expr is not None else conj.method),
        ("conjugate_domain", "dom f*", late if conj is None else conj.domain),
        ("reverse", "reverse u f(1/u)", d.reverse.f),
        ("convexity_check", "convexity", d.convexity_check),
    ]
    return rows


def _fmt(value, latex: bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none (no closed form)"
    if isinstance(value, sympy.Basic):
        return sympy.latex(value) if latex else sympy.sstr(value)
    return str(value)


def run(args: argparse.Namespace) -> int:
    """Execute ``divkit derive``; returns the exit status."""
    from theory import fdiv

    if getattr(args, "list", False):
        for n in fdiv.names():
            print(n)
        return 0
    if args.name == "risk":
        from proofs_check import _cli_risk

        return _cli_risk.run(args)
    if args.name == "alignment":
        from proofs_check import _cli_alignment

        return _cli_alignment.run(args)
    if getattr(args, "target", None) is not None:
        raise ValueError(f"unexpected argument {args.target!r} (only 'derive alignment NAME' takes "
                         "a second name)")
    params = _params(args.param)
    if args.expr is not None and args.name is not None:
        raise ValueError("give either a catalog NAME or --f EXPR, not both")
    if args.expr is not None:
        d = fdiv.FDivergence.from_string(args.expr, **params)
    elif args.name is not None:
        d = fdiv.get(args.name, **params)
    else:
        raise ValueError("give a catalog NAME or --f EXPR (see `divkit derive --list`)")
    decimal = any(any(c in v for c in ".eE") for v in params.values())
    rows = derived_quantities(d, budget=SOLVE_BUDGET if decimal else None)
    head = {"name": d.name, "params": {k: sympy.sstr(v) for k, v in d.params.items()}}
    return render(rows, head, f"{d.name}:  D_f(P||Q) = sum_i q_i f(p_i/q_i),  u = p/q",
                  json_out=args.json, latex=args.latex)


def render(rows, head: dict, title: str, *, json_out: bool, latex: bool) -> int:
    """Print derived ``rows`` (key, label, value) as JSON (``head`` plus, per key, its text
    and LaTeX) or as a rich table titled ``title``; returns the exit status 0. Shared by
    ``divkit derive`` and ``divkit derive alignment``."""
    if json_out:
        payload = dict(head)
        for key, _label, value in rows:
            entry = {"text": _fmt(value, False)}
            if isinstance(value, sympy.Basic):
                entry["latex"] = sympy.latex(value)
            payload[key] = entry
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    from rich.table import Table

    table = Table(title=title)
    table.add_column("quantity", style="bold")
    table.add_column("value", overflow="fold")
    for _key, label, value in rows:
        table.add_row(label, _fmt(value, latex))
    _cli_budget.console(width=140).print(table)
    return 0
