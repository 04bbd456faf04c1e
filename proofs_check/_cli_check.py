"""``divkit check``: run the claim catalog and the kernel validations, print the verdicts.

Usage::

    divkit check                          # the whole catalog
    divkit check --claim pinsker --claim false_kl_symmetric
    divkit check --tag false --json       # one JSON object per claim, as a JSON list
    divkit check --budget 5               # seconds per claim (unfinished → inconclusive)
    divkit check --list                   # names, tags and expected verdicts only

The exit status is 0 when every claim gets its expected verdict, 1 otherwise (2 for a
usage error such as an unknown claim or tag). See docs/verdicts.md for what each verdict
guarantees.
"""

from __future__ import annotations

import json
import sys
import time

from proofs_check import _cli_budget

__all__ = ["add_arguments", "run"]

_STYLE = {
    "proved": "bold green",
    "certified": "green",
    "consistent": "cyan",
    "violated": "red",
    "inconclusive": "yellow",
}


def add_arguments(parser) -> None:
    """Add the options of ``divkit check`` to an argparse parser."""
    parser.add_argument("--claim", dest="claims", metavar="NAME", nargs="+", action="extend",
                        default=[], help="check only these claims (repeatable)")  # fmt: skip
    parser.add_argument("--tag", dest="tags", metavar="TAG", action="append", default=[],
                        help="check only claims with this tag (repeatable)")  # fmt: skip
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list with one object per claim")  # fmt: skip
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="time budget per claim (default: the claim's own, 20 s)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling designs")
    parser.add_argument("--list", action="store_true", help="list the claims and exit")


def _check_one(entry, budget, seed):
    from proofs_check import catalog
    from proofs_check.claims import Verdict

    start = time.perf_counter()
    try:
        claim = catalog.get(entry.name)
        return claim.check(budget=budget, seed=seed)
    except Exception as exc:  # noqa: BLE001 - a broken claim is reported, not fatal
        return Verdict(
            status="inconclusive", engine="error", claim=entry.name, expected=entry.expected,
            source=entry.source, detail=f"{type(exc).__name__}: {exc}",
            elapsed=time.perf_counter() - start,
        )  # fmt: skip


def run(args) -> int:
    """Run ``divkit check``; returns the exit status."""
    from proofs_check import catalog

    if args.budget is not None and args.budget <= 0:
        raise ValueError(f"--budget must be positive seconds, got {args.budget}")
    entries = catalog.select(args.claims or None, args.tags or None)
    out = _cli_budget.console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = _cli_budget.console(highlight=False, soft_wrap=False, width=150)
    if args.list:
        return _list(entries, args.json, out)
    verdicts = []
    if args.json:
        for e in entries:
            verdicts.append(_check_one(e, args.budget, args.seed))
        print(json.dumps([v.to_dict() for v in verdicts], indent=1, ensure_ascii=False))
        return 0 if all(v.ok for v in verdicts) else 1

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = _cli_budget.console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:  # fmt: skip
        task = progress.add_task("checking", total=len(entries))
        for e in entries:
            progress.update(task, description=f"checking {e.name}")
            verdicts.append(_check_one(e, args.budget, args.seed))
            progress.advance(task)
    _table(verdicts, out)
    return 0 if all(v.ok for v in verdicts) else 1


def _table(verdicts, out) -> None:
    from rich.table import Table

    table = Table(title="divkit check", show_lines=False)
    table.add_column("claim", overflow="fold")
    table.add_column("engine")
    table.add_column("verdict")
    table.add_column("margin or counterexample", overflow="fold", max_width=70)
    table.add_column("time", justify="right")
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
        verdict = f"[{_STYLE[v.status]}]{v.status}[/]"
        if not v.ok:
            verdict += f" [bold red](expected {v.expected})[/]"
        summary = v.summary()
        if v.engine == "error":
            summary = v.detail
        table.add_row(v.claim or "", v.engine, verdict, _escape(summary), f"{v.elapsed:.2f}s")
    out.print(table)
    bad = [v.claim for v in verdicts if not v.ok]
    parts = ", ".join(f"{counts[s]} {s}" for s in _STYLE if s in counts)
    total = sum(v.elapsed for v in verdicts)
    out.print(f"{len(verdicts)} claims in {total:.1f}s: {parts}")
    if bad:
        out.print(f"[bold red]{len(bad)} verdict(s) differ from the expected one:[/] {', '.join(bad)}")
    else:
        out.print("[green]every verdict equals its expected verdict[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text or "")


def _list(entries, as_json: bool, out) -> int:
    if as_json:
        rows = [{"name": e.name, "tags": list(e.tags), "expected": e.expected, "source": e.source,
                 "description": e.description} for e in entries]  # fmt: skip
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    from rich.table import Table

    table = Table(title="divkit claim catalog")
    for col in ("claim", "expected", "tags", "statement"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.name, e.expected, ", ".join(e.tags), _escape(e.description))
    out.print(table)
    return 0


if __name__ == "__main__":  # pragma: no cover
    import argparse

    p = argparse.ArgumentParser(prog="divkit check")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
