"""The ``divkit`` command.

Subcommands
-----------
``divkit derive NAME | --f EXPR [--param k=v] [--latex | --json]``
    every derived quantity of an f-divergence generator (theory.fdiv);
``divkit derive risk --family NAME [--truth DIST]``
    the MLE risk expansion of theory.asymptotics;
``divkit check [--claim NAME ...] [--tag TAG] [--json] [--budget SECONDS]``
    runs the claim catalog and the kernel validations, prints verdicts.

Every command takes ``--time-limit SECONDS`` and ``--memory-limit SIZE`` (defaults: derive
60 s / 4 GiB, check 1800 s / 8 GiB; 0 disables) and ends with one line on stderr and exit
status 3 when one is exceeded (``_cli_budget``). When the output's reader goes away
(``divkit ... | head``) a command stops quietly with status 141 (128 + SIGPIPE).

Each subcommand lives in its own module (``_cli_derive``, ``_cli_risk``, ``_cli_check``)
that provides ``add_arguments(parser)`` and ``run(args) -> int``; this module only wires
them together. Imports are lazy so ``divkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from proofs_check import _cli_budget

__all__ = ["main"]

_SUBCOMMANDS = {
    "derive": ("proofs_check._cli_derive", "derive the quantities of a divergence or a risk"),
    "check": ("proofs_check._cli_check", "run the claim catalog and kernel validations"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="divkit",
        description="Symbolic-plus-numeric theory toolkit for divergences.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in _SUBCOMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=mod.__doc__)
        mod.add_arguments(p)
        _cli_budget.add_arguments(p, name)
        p.set_defaults(_run=mod.run)
    return parser


def _run(args) -> int:
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError) as exc:
        print(f"divkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``divkit`` console script; returns the exit status.

    The command runs within ``--time-limit``/``--memory-limit`` (proofs_check._cli_budget).
    """
    try:
        parser = _build_parser()
        args = parser.parse_args(argv)
        return _cli_budget.run_limited(_run, args, command=args.command,
                                       time_limit=args.time_limit,
                                       memory_limit=args.memory_limit)
    except BrokenPipeError:  # `divkit ... | head`: the reader is gone; stop quietly
        return _cli_budget.broken_pipe()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
