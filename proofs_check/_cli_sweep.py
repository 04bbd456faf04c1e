"""``divkit sweep``: a kernel's accuracy or a claim over a grid of one parameter.

Usage::

    divkit sweep kernel js --param beta=0:1:21            # 21 values of β in [0, 1]
    divkit sweep kernel alpha --param alpha=-2:3:11 --json
    divkit sweep kernel power --param alpha=1/4,1/2,2,3 --plot power.png
    divkit sweep claim plugin_kl_rate --param seed=0:9:10  # a Monte Carlo claim, 10 seeds
    divkit sweep claim pinsker --param budget=1,5,20 --workers 2

``kernel NAME``: at each value, the kernel validation of ``divkit check`` (claim
``kernel_NAME``: numeric.divergence in float64 against the 50-digit reference on nine rows:
dense, nearly equal, zero mass, extreme ratios) with the family's parameter set to the value.
``claim NAME``: the catalog claim checked with its ``seed`` or ``budget`` set to each value
(a rate or Monte Carlo claim over seeds, any claim over budgets).

The grid is ``name=lo:hi:count`` (``count`` evenly spaced values, both ends included) or
``name=v1,v2,...``; values go through the whitelist parser (``1/3`` is exact). Points run in
parallel on the executors of ``divkit check`` (``--workers``, ``--scheduler``); the output is
a table (value, verdict, margin: the smallest ``1 − error/allowed`` for a kernel, the
verdict's margin for a claim), ``--json``, and with ``--plot FILE.png`` the margin against the
parameter (matplotlib). A point whose value the family refuses is reported as an error row.
The exit status is 0 when every point gets its expected verdict, 1 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time

from proofs_check import _cli_budget

__all__ = ["add_arguments", "run", "parse_grid"]

_KINDS = ("kernel", "claim")
_CLAIM_PARAMS = ("seed", "budget")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``divkit sweep``."""
    from proofs_check._cli_check import add_executor_arguments

    parser.add_argument("kind", choices=_KINDS, help="kernel (accuracy of a catalog kernel) "
                        "or claim (a catalog claim)")  # fmt: skip
    parser.add_argument("name", help="catalog divergence (kernel) or claim name (claim)")
    parser.add_argument("--param", required=True, metavar="NAME=GRID",
                        help="the grid: name=lo:hi:count or name=v1,v2,...")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per value")
    parser.add_argument("--plot", metavar="FILE.png", help="plot the margin against the parameter")
    add_executor_arguments(parser)


def parse_grid(text: str):
    """``name=lo:hi:count`` or ``name=v1,v2,...`` → (name, [exact sympy numbers]).

    >>> parse_grid("beta=0:1:5")
    ('beta', [0, 1/4, 1/2, 3/4, 1])
    >>> parse_grid("alpha=1/3,2")
    ('alpha', [1/3, 2])
    """
    import sympy

    from theory.parsing import parse_number as _parse

    name, eq, rest = str(text).partition("=")

    def parse_number(value: str):
        try:
            return _parse(value)
        except ValueError as exc:
            raise ValueError(f"--param {name}: {value!r} is not a number ({exc})") from None

    name = name.strip()
    if not eq or not name.isidentifier() or not rest.strip():
        raise ValueError(f"--param expects NAME=lo:hi:count or NAME=v1,v2,..., got {text!r}")
    if ":" in rest:
        parts = rest.split(":")
        if len(parts) != 3:
            raise ValueError(f"--param {name}: a range is lo:hi:count, got {rest!r}")
        lo, hi = parse_number(parts[0].strip()), parse_number(parts[1].strip())
        try:
            count = int(parts[2])
        except ValueError:
            count = 0
        if count < 2:
            raise ValueError(f"--param {name}: count must be an integer >= 2, got {parts[2]!r}")
        if not (lo.is_real and hi.is_real and lo.is_finite and hi.is_finite) or bool(lo >= hi):
            raise ValueError(f"--param {name}: need finite lo < hi, got {parts[0]}:{parts[1]}")
        values = [sympy.nsimplify(lo + (hi - lo) * sympy.Rational(i, count - 1))
                  for i in range(count)]
    else:
        values = [parse_number(v.strip()) for v in rest.split(",") if v.strip()]
        if not values:
            raise ValueError(f"--param {name}: no values in {rest!r}")
    return name, values


def _margin_number(text):
    """The leading number of a verdict's margin text (``None`` when there is none)."""
    if text is None:
        return None
    m = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", str(text))
    return float(m.group(0)) if m else None


def _kernel_point(value, *, fname: str, pname: str):
    from proofs_check import catalog
    from proofs_check.claims import Verdict

    start = time.perf_counter()
    try:
        verdict = catalog.kernel_claim(fname, {pname: value}).check()
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        verdict = Verdict(status="inconclusive", engine="error", claim=f"kernel_{fname}",
                          expected="consistent", detail=f"{type(exc).__name__}: {exc}",
                          elapsed=time.perf_counter() - start)
    return verdict


def _claim_point(value, *, name: str, pname: str):
    from proofs_check._cli_check import check_named

    if pname == "seed":
        return check_named(name, None, int(value))
    return check_named(name, float(value), 0)


def _check_values(kind, pname, values) -> None:
    if kind != "claim":
        return
    if pname not in _CLAIM_PARAMS:
        raise ValueError(f"sweep claim: --param must be one of {', '.join(_CLAIM_PARAMS)}, "
                         f"got {pname!r}")
    for v in values:
        if pname == "seed" and not (v.is_Integer and v >= 0):
            raise ValueError(f"sweep claim: seed values must be integers >= 0, got {v}")
        if pname == "budget" and not (v.is_real and v > 0 and v.is_finite):
            raise ValueError(f"sweep claim: budget values must be positive seconds, got {v}")


def run(args) -> int:
    """Run ``divkit sweep``; returns the exit status."""
    from proofs_check import _cli_check, _cli_executor, catalog

    _cli_check.check_executor_arguments(args)
    pname, values = parse_grid(args.param)
    _check_values(args.kind, pname, values)
    if args.kind == "kernel":
        from theory import fdiv

        known = [str(s) for s in fdiv.family(args.name).symbols]  # unknown names raise
        if f"kernel_{args.name}" not in catalog.names():
            raise ValueError(f"no kernel validation for {args.name!r}")
        if pname not in known:
            raise ValueError(f"sweep kernel {args.name}: --param must name one of its "
                             f"parameters ({', '.join(known) or 'none'}), got {pname!r}")
        task = functools.partial(_kernel_point, fname=args.name, pname=pname)
    else:
        catalog.select([args.name])  # an unknown claim raises with the closest names
        task = functools.partial(_claim_point, name=args.name, pname=pname)
    start = time.perf_counter()
    results: dict[int, object] = {}
    with _cli_executor.executor(workers=args.workers, scheduler=args.scheduler) as ex:
        for i, verdict in ex.imap(task, values):
            results[i] = verdict
    wall = time.perf_counter() - start
    rows = []
    for i, v in enumerate(values):
        verdict = results[i]
        rows.append({"param": pname, "value": str(v), "value_float": float(v),
                     "status": verdict.status, "expected": verdict.expected, "ok": verdict.ok,
                     "margin": verdict.margin, "margin_value": _margin_number(verdict.margin),
                     "detail": verdict.detail, "elapsed": verdict.elapsed})
    if args.plot:
        _plot(rows, args, pname)
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        _table(rows, args, pname, wall)
    return 0 if all(r["ok"] for r in rows) else 1


def _table(rows, args, pname, wall) -> None:
    from rich.markup import escape
    from rich.table import Table

    from proofs_check._cli_check import _STYLE

    out = _cli_budget.console(highlight=False, soft_wrap=False, width=150)
    table = Table(title=f"divkit sweep {args.kind} {args.name} over {pname}")
    table.add_column(pname, justify="right")
    table.add_column("verdict")
    table.add_column("margin", overflow="fold", max_width=60)
    table.add_column("time", justify="right")
    for r in rows:
        verdict = f"[{_STYLE[r['status']]}]{r['status']}[/]"
        if not r["ok"]:
            verdict += f" [bold red](expected {r['expected']})[/]"
        shown = r["margin"] if r["margin"] is not None else r["detail"]
        table.add_row(r["value"], verdict, escape(shown or ""), f"{r['elapsed']:.2f}s")
    out.print(table)
    bad = [r["value"] for r in rows if not r["ok"]]
    out.print(f"{len(rows)} values in {wall:.1f}s wall"
              + (f"; [bold red]not as expected at {pname} = {', '.join(bad)}[/]" if bad
                 else "; every verdict equals its expected verdict"))
    if args.plot:
        out.print(f"plot: {args.plot}")


def _plot(rows, args, pname) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colours = {"proved": "darkgreen", "certified": "green", "consistent": "tab:blue",
               "violated": "tab:red", "inconclusive": "tab:orange"}
    xs = [r["value_float"] for r in rows if r["margin_value"] is not None]
    ys = [r["margin_value"] for r in rows if r["margin_value"] is not None]
    ax.plot(xs, ys, color="0.6", lw=1, zorder=1)
    for status, colour in colours.items():
        pts = [(r["value_float"], r["margin_value"]) for r in rows
               if r["status"] == status and r["margin_value"] is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), color=colour, label=status, zorder=2)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel(pname)
    ax.set_ylabel("margin (1 - error/allowed)" if args.kind == "kernel" else "verdict margin")
    ax.set_title(f"divkit sweep {args.kind} {args.name}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser(prog="divkit sweep")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
