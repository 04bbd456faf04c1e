"""``divkit check``: run the claim catalog and the kernel validations, print the verdicts.

Usage::

    divkit check                          # the whole catalog
    divkit check --claim pinsker --claim false_kl_symmetric
    divkit check --tag false --json       # one JSON object per claim, as a JSON list
    divkit check --budget 5               # seconds per claim (unfinished → inconclusive)
    divkit check --list                   # names, tags and expected verdicts only
    divkit check --workers 4              # four local worker processes (default: one per CPU)
    divkit check --scheduler local        # an in-process Dask LocalCluster (--workers of them)
    divkit check --scheduler tcp://head:8786   # the workers of a Dask cluster

Claims are the unit of work: each is built and checked whole on one worker. Claims about
the same catalog divergence run in one process (they share its derivations); the longest
units start first (the times of the last run on this machine, building included, are kept
in divkit's cache directory). The verdicts and every
number in them are the same for any worker count and scheduler (Monte Carlo claims draw in
seeded chunks, see proofs_check.engines.montecarlo); only the times differ. A progress bar
is shown on stderr when it is a terminal, never with ``--json``.

The exit status is 0 when every claim gets its expected verdict, 1 otherwise (2 for a
usage error such as an unknown claim or tag). See docs/verdicts.md for what each verdict
guarantees.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from proofs_check import _cli_budget, _cli_executor

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
    parser.add_argument("--budget", type=parse_budget, default=None, metavar="SECONDS",
                        help="time budget per claim (default: the claim's own, 20 s)")  # fmt: skip
    parser.add_argument("--seed", type=parse_seed, default=0,
                        help="seed of the sampling designs and Monte Carlo draws (integer >= 0)")
    parser.add_argument("--list", action="store_true", help="list the claims and exit")
    add_executor_arguments(parser)


def add_executor_arguments(parser) -> None:
    """``--workers`` and ``--scheduler`` (shared by ``divkit check`` and ``divkit sweep``)."""
    parser.add_argument("--workers", type=_cli_executor.parse_workers, default=None,
                        metavar="N", help="local worker processes (default: one per CPU); "
                        "with --scheduler local, the LocalCluster's workers")  # fmt: skip
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on a Dask distributed cluster: a scheduler address "
                        "(tcp://host:8786) or 'local' for an in-process LocalCluster")  # fmt: skip


def check_executor_arguments(args) -> None:
    """Usage errors of ``--workers``/``--scheduler`` (a remote cluster has its own workers)."""
    if args.scheduler is not None and args.scheduler != "local" and args.workers is not None:
        raise ValueError("--workers applies to local processes and --scheduler local; a "
                         "remote scheduler uses the workers of its cluster")
    if args.scheduler is not None and not args.scheduler.strip():
        raise ValueError("--scheduler needs an address (tcp://host:8786) or 'local'")


def parse_budget(text: str) -> float:
    """``--budget SECONDS``: a finite positive number (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected a finite positive number of seconds, got {text!r}")
    return value


def parse_seed(text: str) -> int:
    """``--seed N``: an integer >= 0 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


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


def check_named(name: str, budget: float | None, seed: int):
    """The verdict of catalog claim ``name`` (the unit of work a worker runs)."""
    from proofs_check import catalog

    start = time.perf_counter()
    entry = {e.name: e for e in catalog.entries()}[name]
    verdict = _check_one(entry, budget, seed)
    # building the claim (sympy) counts too when ordering the work; kept off the verdict's
    # fields so that the output does not depend on it
    verdict._work_seconds = time.perf_counter() - start
    return verdict


def _check_unit(names, *, budget, seed):
    return [check_named(n, budget, seed) for n in names]


_TIMES_FILE = "check_times.json"


def _times_path():
    from numeric.codegen import cache_dir

    return cache_dir() / _TIMES_FILE


def _load_times() -> dict:
    try:
        data = json.loads(_times_path().read_text())
        return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError, TypeError, ImportError):
        return {}


def _save_times(times: dict, verdicts) -> None:
    merged = dict(times)
    merged.update({v.claim: round(float(getattr(v, "_work_seconds", v.elapsed)), 4)
                   for v in verdicts if v.claim})
    try:
        path = _times_path()
        tmp = path.with_name(f".{_TIMES_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(merged, sort_keys=True))
        os.replace(tmp, path)
    except (OSError, ImportError):
        pass


def longest_first(names: list[str], times: dict) -> list[str]:
    """``names`` ordered by the time they took last (longest first; unknown ones first,
    since they may be long); ties keep the catalog order."""
    return sorted(names, key=lambda n: -times.get(n, math.inf))


def work_units(names: list[str], times: dict) -> list[list[str]]:
    """Claims grouped by the catalog divergence they are about, longest group first.

    Claims about one divergence (``nonneg_js``, ``kernel_js``, ``fenchel_young_js``, ...)
    share its derivations (sympy caches, the kernel's forms); run in one process they
    derive them once. Other claims are units of their own. The grouping only decides
    where claims run, never what they compute.
    """
    from theory import fdiv

    families = sorted(fdiv.names(), key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for n in names:
        key = next((f for f in families if n.endswith("_" + f)), None)
        groups.setdefault(f"family:{key}" if key else n, []).append(n)
    units = list(groups.values())
    cost = {id(u): sum(times.get(n, math.inf) for n in u) for u in units}
    return sorted(units, key=lambda u: -cost[id(u)])


def run_claims(entries, *, budget, seed, workers=None, scheduler=None, progress=False,
               columns=None):
    """Verdicts of ``entries`` (in their order), run on the executor of ``workers`` and
    ``scheduler`` (see proofs_check._cli_executor): claims grouped by divergence
    (:func:`work_units`), the longest units first."""
    import functools

    names = [e.name for e in entries]
    times = _load_times()
    units = work_units(names, times)
    task = functools.partial(_check_unit, budget=budget, seed=seed)
    results: dict[str, object] = {}
    with _cli_executor.executor(workers=workers, scheduler=scheduler) as ex:
        bar = _progress(len(names), columns) if progress else None
        try:
            for i, verdicts in ex.imap(task, units):
                for n, verdict in zip(units[i], verdicts, strict=True):
                    results[n] = verdict
                if bar is not None:
                    bar[0].update(bar[1], advance=len(units[i]), description=f"done {units[i][-1]}")
        finally:
            if bar is not None:
                bar[0].stop()
    verdicts = [results[n] for n in names]
    _save_times(times, verdicts)
    return verdicts


def _progress(total: int, columns=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = _cli_budget.console(stderr=True, force_terminal=True, width=columns)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=True)  # fmt: skip
    task = progress.add_task("checking", total=total)
    progress.start()
    return progress, task


def run(args) -> int:
    """Run ``divkit check``; returns the exit status."""
    from proofs_check import catalog

    check_executor_arguments(args)
    entries = catalog.select(args.claims or None, args.tags or None)
    out = _cli_budget.console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = _cli_budget.console(highlight=False, soft_wrap=False, width=150)
    if args.list:
        return _list(entries, args.json, out)
    show = not args.json and len(entries) > 1 and _cli_executor.stderr_is_terminal(args)
    start = time.perf_counter()
    verdicts = run_claims(entries, budget=args.budget, seed=args.seed, workers=args.workers,
                          scheduler=args.scheduler, progress=show,
                          columns=getattr(args, "_columns", None))  # fmt: skip
    wall = time.perf_counter() - start
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=1, ensure_ascii=False))
        return 0 if all(v.ok for v in verdicts) else 1
    _table(verdicts, out, wall)
    return 0 if all(v.ok for v in verdicts) else 1


def _table(verdicts, out, wall: float | None = None) -> None:
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
    took = f" ({wall:.1f}s wall)" if wall is not None else ""
    out.print(f"{len(verdicts)} claims in {total:.1f}s{took}: {parts}")
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
