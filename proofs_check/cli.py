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
import shutil
import sys

from proofs_check import _cli_budget

__all__ = ["main"]

_SUBCOMMANDS = {
    "derive": ("proofs_check._cli_derive", "derive the quantities of a divergence or a risk"),
    "check": ("proofs_check._cli_check", "run the claim catalog and kernel validations"),
    "codegen": ("proofs_check._cli_codegen", "write the generated kernels of a divergence"),
    "sweep": ("proofs_check._cli_sweep", "a claim or kernel accuracy over a parameter grid"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="divkit",
        description="Symbolic-plus-numeric theory toolkit for divergences.",
        epilog="`divkit COMMAND --help` shows a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in _SUBCOMMANDS.items():
        mod = importlib.import_module(module)
        # raw description: the module docstrings' usage lines and examples stay as written
        p = sub.add_parser(name, help=help_text, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        _cli_budget.add_arguments(p, name)
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


#: derive's options by mode: the ones each mode reads (any other given is a usage error).
_DERIVE_MODES = {
    "list": {"list"},
    "risk": {"name", "family", "truth", "json", "latex"},
    "alignment": {"name", "target", "param", "json", "latex"},
    "generator": {"name", "expr", "param", "json", "latex", "target"},
}
_DERIVE_OPTIONS = {"list": "--list", "family": "--family", "truth": "--truth", "expr": "--f",
                   "param": "--param", "json": "--json", "latex": "--latex",
                   "target": "a second NAME"}


def _check_derive_options(args) -> None:
    """A derive option that the chosen mode would ignore is a usage error (exit status 2)."""
    if args.list:
        mode, what = "list", "derive --list"
    elif args.name in ("risk", "alignment"):
        mode, what = args.name, f"derive {args.name}"
    else:
        mode, what = "generator", f"derive {args.name or '--f EXPR'}"
    given = {key for key in _DERIVE_OPTIONS
             if getattr(args, key, None) not in (None, False, [])}
    stray = sorted(given - _DERIVE_MODES[mode])
    if stray:
        names = ", ".join(_DERIVE_OPTIONS[k] for k in stray)
        args._parser.error(f"{names} does not apply to {what}")


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
        if args.command == "derive":
            _check_derive_options(args)
        # the command runs in a child writing into pipes: remember what the user's streams are
        args._stderr_tty = _isatty(sys.stderr)
        args._columns = shutil.get_terminal_size().columns
        return _cli_budget.run_limited(_run, args, command=args.command,
                                       time_limit=args.time_limit,
                                       memory_limit=args.memory_limit)
    except BrokenPipeError:  # `divkit ... | head`: the reader is gone; stop quietly
        return _cli_budget.broken_pipe()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
