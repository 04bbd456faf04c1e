"""Time and memory budgets of the ``divkit`` commands.

Every command runs in a forked child process with an address-space limit
(``RLIMIT_AS``, ``--memory-limit``) while the parent relays its output and enforces a
wall-clock limit (``--time-limit``). When a budget is exceeded the command ends with one
line on stderr, e.g. ``divkit derive: error: time limit of 60 s exceeded (raise it with
--time-limit SECONDS)``, and exit status 3. ``0`` disables a limit. Untrusted input (a
generator or a distribution typed on the command line) can make sympy run for minutes or
grow without bound; the budget turns that into a clear message.

Defaults: ``derive`` 60 s and 4 GiB, ``check`` 1800 s and 8 GiB (the whole catalog takes
well under a minute). A memory limit lies between 512M (below it the interpreter cannot
load its libraries) and 1 EiB; other values are a usage error. Without ``os.fork``
(Windows) the command runs in-process with the memory and recursion errors still reported
in one line, and no time limit.

When the reader of the output goes away (``divkit ... | head``), the command stops
quietly, without a traceback, with status ``EXIT_BROKEN_PIPE`` = 128 + SIGPIPE = 141: the
status a shell reports for a Unix tool that SIGPIPE ended (``yes | head``).
"""

from __future__ import annotations

import argparse
import codecs
import errno
import os
import re
import select
import signal
import sys
import time

__all__ = ["DEFAULTS", "EXIT_BROKEN_PIPE", "EXIT_BUDGET", "MAX_MEMORY", "MIN_MEMORY",
           "add_arguments", "broken_pipe", "console", "parse_memory", "run_limited"]

#: Per command: (seconds, bytes).
DEFAULTS = {"derive": (60.0, 4 * 2**30), "check": (1800.0, 8 * 2**30),
            "codegen": (1800.0, 8 * 2**30), "sweep": (1800.0, 8 * 2**30)}
#: Exit status of a command stopped by its budget.
EXIT_BUDGET = 3
#: Exit status when the output's reader has gone (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 128 + int(getattr(signal, "SIGPIPE", 13))

_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
#: Smallest memory limit accepted: below it the interpreter cannot load the libraries
#: (numpy, sympy, scipy) reliably, and a command fails in an import instead of its work.
MIN_MEMORY = 512 * 2**20
#: Largest memory limit accepted (what ``setrlimit`` can take, 1 EiB).
MAX_MEMORY = 2**60


def parse_memory(text: str) -> int:
    """Bytes from ``"4G"``, ``"512M"``, ``"800k"`` or a plain number of MiB; 0 = no limit.

    A limit must lie between :data:`MIN_MEMORY` (512 MiB) and :data:`MAX_MEMORY` (1 EiB).

    >>> parse_memory("4G"), parse_memory("512"), parse_memory("0")
    (4294967296, 536870912, 0)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(
            f"memory limit must look like 4G, 512M or a number of MiB, got {text!r}")
    from decimal import Decimal

    value = int(Decimal(m.group(1)) * _UNITS[m.group(2).lower()])
    if value > MAX_MEMORY:
        raise argparse.ArgumentTypeError(
            f"memory limit {text.strip()} is too large (at most {MAX_MEMORY // 2**40}T; "
            "0 = no limit)")
    if 0 < value < MIN_MEMORY:
        raise argparse.ArgumentTypeError(
            f"memory limit {text.strip()} is too small: at least {MIN_MEMORY // 2**20}M (the "
            "interpreter and its libraries need that much address space), or 0 for no limit")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"time limit must be a number of seconds, got {text!r}"
                                         ) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"time limit must be >= 0 seconds, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """``--time-limit`` and ``--memory-limit`` with the command's defaults."""
    secs, mem = DEFAULTS.get(command, DEFAULTS["derive"])
    parser.add_argument("--time-limit", type=_seconds, default=secs, metavar="SECONDS",
                        help=f"wall-clock budget of the command (default {secs:g}; 0 = none)")
    parser.add_argument("--memory-limit", type=parse_memory, default=mem, metavar="SIZE",
                        help=f"memory budget, e.g. 4G or 512M (default {mem // 2**30} GiB; "
                             "0 = none)")


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def broken_pipe() -> int:
    """Stop writing after EPIPE: point stdout and stderr at the null device; the exit status.

    The interpreter flushes ``sys.stdout`` and ``sys.stderr`` on exit; with their reader
    gone that flush would print "Exception ignored ... BrokenPipeError". Whatever is still
    buffered goes to the null device instead (the reader no longer wants it).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # captured or closed: nothing to do
            continue
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        except OSError:
            pass
    return EXIT_BROKEN_PIPE


def console(**kwargs):
    """A ``rich.console.Console(**kwargs)`` whose broken pipe reaches ``divkit``'s main.

    rich answers EPIPE with ``SystemExit(1)``; the commands raise ``BrokenPipeError`` instead
    so that every path ends with the same status, ``EXIT_BROKEN_PIPE``.
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "the reader of the output has gone")

    return _Console(**kwargs)


def _guarded(fn, args, command: str, memory_limit: int) -> int:
    """Run ``fn(args)``; memory and recursion exhaustion become one line and status 3.

    Floating-point RuntimeWarnings (overflow, invalid value) are not shown: a command
    reports its results and verdicts, and a warning raised inside a library on the way
    (e.g. an overflow that a claim's screen then discards) is noise on the terminal.
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return int(fn(args) or 0)
    except MemoryError:
        what = (f"memory limit of {_fmt_bytes(memory_limit)} exceeded (raise it with "
                "--memory-limit SIZE)" if memory_limit else "out of memory")
    except RecursionError:
        what = "the computation recursed too deeply (the input is too large or degenerate)"
    sys.stdout.flush()
    print(f"divkit {command}: error: {what}", file=sys.stderr)
    return EXIT_BUDGET


def run_limited(fn, args, *, command: str, time_limit: float | None = None,
                memory_limit: int | None = None) -> int:
    """``fn(args)`` within the budgets; returns its exit status (3 when a budget is hit).

    Output written by ``fn`` to ``sys.stdout``/``sys.stderr`` is relayed as it comes.
    """
    secs, mem = DEFAULTS.get(command, DEFAULTS["derive"])
    time_limit = secs if time_limit is None else float(time_limit)
    memory_limit = mem if memory_limit is None else int(memory_limit)
    if not hasattr(os, "fork") or (not time_limit and not memory_limit):
        return _guarded(fn, args, command, memory_limit)
    sys.stdout.flush()
    sys.stderr.flush()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        rc = 1
        try:
            os.close(r_out)
            os.close(r_err)
            sys.stdout = open(w_out, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
            sys.stderr = open(w_err, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
            if memory_limit:
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
            rc = _guarded(fn, args, command, memory_limit)
        except BaseException as exc:  # noqa: BLE001 - the child must always exit here
            try:
                hint = ""
                if memory_limit and isinstance(exc, ImportError | OSError | SystemError):
                    # a library could not be mapped or allocated under RLIMIT_AS
                    hint = (f" (under the memory limit of {_fmt_bytes(memory_limit)}; raise it "
                            "with --memory-limit SIZE)")
                print(f"divkit {command}: error: {type(exc).__name__}: {exc}{hint}",
                      file=sys.stderr)
            except BaseException:  # noqa: BLE001
                pass
            rc = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(rc)
    os.close(w_out)
    os.close(w_err)
    streams = {r_out: (sys.stdout, codecs.getincrementaldecoder("utf-8")("replace")),
               r_err: (sys.stderr, codecs.getincrementaldecoder("utf-8")("replace"))}
    deadline = time.monotonic() + time_limit if time_limit else None
    timed_out = False
    pipe_broken = False
    try:
        while streams:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(list(streams), [], [], wait)
            for fd in ready:
                chunk = os.read(fd, 65536)
                out, dec = streams[fd]
                try:
                    if not chunk:
                        out.write(dec.decode(b"", final=True))
                        out.flush()
                        del streams[fd]
                        os.close(fd)
                        continue
                    out.write(dec.decode(chunk))
                    out.flush()
                except BrokenPipeError:  # the reader went away (| head): stop the command
                    pipe_broken = True
                    break
            if pipe_broken:
                break
    finally:
        if timed_out or streams:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for fd in list(streams):
            os.close(fd)
    _, status = os.waitpid(pid, 0)
    if pipe_broken:
        return broken_pipe()
    if timed_out:
        print(f"divkit {command}: error: time limit of {time_limit:g} s exceeded (raise it with "
              "--time-limit SECONDS)", file=sys.stderr)
        return EXIT_BUDGET
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        print(f"divkit {command}: error: stopped by signal {sig}"
              + (f" (memory limit {_fmt_bytes(memory_limit)}?)" if memory_limit else ""),
              file=sys.stderr)
        return EXIT_BUDGET
    return os.WEXITSTATUS(status)
