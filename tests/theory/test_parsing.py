"""The whitelist parser: hostile text is refused (or handled) quickly, and nothing executes."""

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
import sympy

from theory import fdiv, u
from theory.parsing import ParseError, parse_expression, parse_number

SENTINEL_NAME = "divkit_sentinel_must_not_exist"

MALICIOUS = [
    "__import__('os').system('touch {s}')",
    "u.__class__",
    "u.__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    '"u"*10**9',
    "'u'",
    "u**u**u**u**99",
    "9**9**9",
    "2**10**10",
    "10**10**10**10",
    "1e999999999",
    "1" * 500,
    "exec('import os')",
    "eval('1')",
    "open('/etc/passwd')",
    "os.system('touch {s}')",
    "u; import os",
    "u[0]",
    "{u: 1}",
    "sympify('u')",
    "getattr(u, 'diff')",
    "u if 1 else 2",
    "Symbol('x')",
    "factorial(10**9)",
    "(" * 5000 + "u" + ")" * 5000,
    "-" * 100000 + "u",
    "u +",
    "",
    "   ",
    "u ** ",
    "log()",
    "log(u, 2, 3)",
    "u = 1",
    "u\\n",
    "\x00u",
    "u @ u",
    "u % 2",
    "u // 2",
    "$u",
    "`id`",
    "u & 1",
]


def _attempt(text, queue):
    try:
        fdiv.FDivergence.from_string(text)
        queue.put("accepted")
    except (ValueError, TypeError) as exc:
        queue.put(f"refused: {type(exc).__name__}: {str(exc)[:200]}")
    except Exception as exc:  # pragma: no cover - any other exception is a failure
        queue.put(f"crashed: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("template", MALICIOUS)
def test_malicious_strings_are_refused_quickly(template, tmp_path):
    sentinel = tmp_path / SENTINEL_NAME
    text = template.replace("{s}", str(sentinel))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_attempt, args=(text, queue))
    start = time.monotonic()
    proc.start()
    proc.join(5.0)
    elapsed = time.monotonic() - start
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"{text[:60]!r} took longer than 5 s")
    outcome = queue.get(timeout=1)
    assert outcome.startswith("refused"), (text[:60], outcome)
    assert not sentinel.exists()
    assert not Path(os.getcwd(), SENTINEL_NAME).exists()
    assert elapsed < 5.0


def test_error_names_the_offending_token():
    with pytest.raises(ParseError, match="'_'"):
        parse_expression("__import__('os')", symbols={"u": u})
    with pytest.raises(ParseError, match="unknown name 'lambda'"):
        parse_expression("lambda", symbols={"u": u})
    with pytest.raises(ParseError, match="quotes"):
        parse_expression("'u'", symbols={"u": u})
    with pytest.raises(ParseError, match=r"'\['"):
        parse_expression("u[0]", symbols={"u": u})
    with pytest.raises(ParseError, match="too large"):
        parse_expression("9**9**9", symbols={})


def test_valid_expressions_parse_to_the_intended_tree():
    x = sympy.Symbol("x")
    cases = {
        "(sqrt(u) - 1)**2": (sympy.sqrt(u) - 1) ** 2,
        "u*log(u) - u + 1": u * sympy.log(u) - u + 1,
        "-u^2": -(u**2),
        "2**-1": sympy.Rational(1, 2),
        "1e-3*u": u / 1000,
        "abs(u - 1)/2": sympy.Abs(u - 1) / 2,
        "log(8, 2)": sympy.Integer(3),
        "max(u, 1) - min(u, 1)": sympy.Max(u, 1) - sympy.Min(u, 1),
        "u**2**3": u**8,
        "-(-u)": u,
        "pi*E": sympy.pi * sympy.E,
        ".5*u": u / 2,
    }
    for text, expected in cases.items():
        assert sympy.simplify(parse_expression(text, symbols={"u": u, "x": x}) - expected) == 0, text


def test_parse_number():
    assert parse_number("1/3") == sympy.Rational(1, 3)
    assert parse_number("0.25") == sympy.Rational(1, 4)
    with pytest.raises(ParseError):
        parse_number("u")
    with pytest.raises(ParseError, match="undefined value|not a finite number"):
        parse_number("log(0)")
    with pytest.raises(ParseError, match="division by zero"):
        parse_number("1/0")


def test_parser_never_calls_sympify(monkeypatch):
    def boom(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("sympify was called on user text")

    import sympy.core.sympify as sympify_module

    monkeypatch.setattr(sympify_module, "parse_expr", boom, raising=False)
    monkeypatch.setattr(sympy, "parse_expr", boom, raising=False)
    assert parse_expression("u*log(u)", symbols={"u": u}) == u * sympy.log(u)
