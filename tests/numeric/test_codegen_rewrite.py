"""Each numerical rewrite pass, at a point where the naive float64 form is badly wrong.

"Badly wrong" means a relative error of at least 1e6 ulps (1e6·eps ≈ 2.2e-10) or a
non-finite value where the truth is finite; at most of the points below the naive form
loses every digit (relative error 1, i.e. ~4.5e15 ulps). The rewritten form must be within
4 ulps of an mpmath reference at 50 digits, computed from the exact float inputs with an
independent formula and confirmed at 70 digits (guard digits).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy

from numeric import codegen
from numeric.codegen import nodes
from numeric.codegen.rewrite import DEFAULT_PASSES, PASSES

x, y = sympy.symbols("x y", real=True)
EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(tmp_path / "cache"))


def reference(fn, *inputs) -> mpmath.mpf:
    """``fn`` at 50 digits (+30 guard digits) on the exact floats, checked at 70 (+30)."""
    values = []
    for dps in (50, 70):
        with mpmath.workdps(dps + 30):
            values.append(fn(*[mpmath.mpf(float(v)) for v in inputs]))
    with mpmath.workdps(100):
        a, b = values
        if mpmath.isfinite(b) and b != 0:
            assert abs(a - b) <= abs(b) * mpmath.mpf(10) ** -45
        else:
            assert a == b
    return values[0]


def ulps(got: float, truth: mpmath.mpf) -> float:
    if not math.isfinite(got):
        return math.inf
    t = float(truth)
    if t == 0.0:
        return 0.0 if got == 0.0 else math.inf
    with mpmath.workdps(70):
        return float(abs(mpmath.mpf(got) - truth) / mpmath.mpf(float(np.spacing(abs(t)))))


def evaluate(expr, args, values, passes):
    fn = codegen.numpy_function(expr, args, passes=passes)
    with np.errstate(all="ignore"):
        out = fn(*[np.array([v], dtype=np.float64) for v in values])
    return float(out[0])


def assert_badly_wrong(naive: float, truth: mpmath.mpf) -> None:
    if not math.isfinite(naive):
        assert mpmath.isfinite(truth)
        return
    with mpmath.workdps(50):
        rel = abs(mpmath.mpf(naive) - truth) / abs(truth)
    assert rel >= 1e6 * EPS, f"naive form only off by {float(rel):.3g} relative"


# (pass name, naive expression, args, points, mpmath reference, node the pass must produce)
CASES = [
    (
        "softplus",
        sympy.log(1 + sympy.exp(x)),
        [x],
        [(800.0,), (-40.0,)],
        lambda x: mpmath.log1p(mpmath.exp(x)),
        nodes.softplus,
    ),
    (
        "expand_xlogy",
        nodes.xlogy(-sympy.Rational(1, 2), 1 + sympy.exp(x)),
        [x],
        [(-40.0,), (-700.0,)],
        lambda x: -mpmath.log1p(mpmath.exp(x)) / 2,
        nodes.softplus,
    ),
    (
        "softplus_shift",
        nodes.softplus(x) / 2 - x / 2 + y,
        [x, y],
        [(40.0, 0.0), (60.0, 0.0)],
        lambda x, y: mpmath.log1p(mpmath.exp(-x)) / 2 + y,
        nodes.softplus,
    ),
    (
        "logaddexp",
        sympy.log(sympy.exp(x) + sympy.exp(y)),
        [x, y],
        [(1000.0, 1000.0), (-1000.0, -1001.0), (710.0, -3.0)],
        lambda x, y: mpmath.log(mpmath.exp(x) + mpmath.exp(y)),
        nodes.logaddexp,
    ),
    (
        "log1mexp",
        sympy.log(1 - sympy.exp(x)),
        [x],
        [(-1e-20,), (-50.0,), (-1e-9,)],
        # log(1 - e^x) conditioned on each side: -expm1 near 0, log1p(-e^x) far from it
        lambda x: mpmath.log(-mpmath.expm1(x)) if x > -1 else mpmath.log1p(-mpmath.exp(x)),
        nodes.log1mexp,
    ),
    ("log1p", sympy.log(1 + x), [x], [(1e-20,), (1e-10,), (-3e-12,)], lambda x: mpmath.log1p(x), nodes.log1p),
    (
        "powm1",
        x ** sympy.Rational(1, 3) - 1,
        [x],
        [(1.0 + 2.0**-40,), (1.0 - 2.0**-45,)],
        lambda x: mpmath.cbrt(x) - 1,
        nodes.expm1,
    ),
    ("expm1", sympy.exp(x) - 1, [x], [(1e-20,), (-3e-11,), (2e-9,)], lambda x: mpmath.expm1(x), nodes.expm1),
    (
        "xlogy",
        x * sympy.log(y),
        [x, y],
        [(0.0, 0.0)],
        lambda x, y: mpmath.mpf(0) if x == 0 else x * mpmath.log(y),
        nodes.xlogy,
    ),
    (
        "xlog1py",
        x * nodes.log1p(y),
        [x, y],
        [(0.0, -1.0)],
        lambda x, y: mpmath.mpf(0) if x == 0 else x * mpmath.log1p(y),
        nodes.xlog1py,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_pass_fixes_a_badly_wrong_point(case):
    name, naive, args, points, ref, node = case
    rewritten = PASSES[name](naive)
    if name == "expand_xlogy":
        # this pass only exposes the log's argument; the softplus pass then fixes it
        rewritten = PASSES["softplus"](rewritten)
    assert rewritten.has(node), f"{name} did not fire on {naive}: {rewritten}"
    for point in points:
        truth = reference(ref, *point)
        bad = evaluate(naive, args, point, passes=())
        assert_badly_wrong(bad, truth)
        good = evaluate(rewritten, args, point, passes=())
        assert ulps(good, truth) <= 4, (name, point, good, float(truth))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_pass_keeps_ordinary_points_exact(case):
    """Away from the bad points the rewrite changes nothing beyond a few ulps."""
    name, naive, args, _points, ref, _node = case
    rewritten = PASSES[name](naive)
    rng = np.random.default_rng(7)
    for _ in range(20):
        if name == "log1mexp":
            point = (-rng.uniform(0.1, 5.0),)
        elif name in ("xlogy", "xlog1py"):
            point = (rng.uniform(0.1, 3.0), rng.uniform(0.5, 3.0))
        else:
            point = tuple(rng.uniform(0.5, 3.0) for _ in args)
        truth = reference(ref, *point)
        assert ulps(evaluate(rewritten, args, point, passes=()), truth) <= 4


def test_default_order_prefers_softplus_and_log1mexp_over_log1p():
    assert codegen.rewrite(sympy.log(1 + sympy.exp(x))) == nodes.softplus(x)
    assert codegen.rewrite(sympy.log(1 - sympy.exp(x))) == nodes.log1mexp(x)
    # log1p alone would give log1p(exp(x)), which overflows at x = 800
    assert PASSES["log1p"](sympy.log(1 + sympy.exp(x))) == nodes.log1p(sympy.exp(x))
    assert [p.name for p in DEFAULT_PASSES].index("softplus") < [p.name for p in DEFAULT_PASSES].index(
        "log1p"
    )


def test_passes_leave_other_expressions_alone():
    for expr in (sympy.log(x + 2), sympy.exp(x) + 5, x * y, sympy.log(3) * x, x**2 - 1):
        assert codegen.rewrite(expr) == expr


def test_opportunistic_expm1_on_alpha_generator():
    """(u^(1-α) − (1−α)u − α)/(α(α−1)) near u = 1: the u^(2/3) − 1 part becomes expm1."""
    u = sympy.Symbol("u", positive=True)
    a = sympy.Rational(1, 3)
    f = (u ** (1 - a) - (1 - a) * u - a) / (a * (a - 1))
    rewritten = codegen.rewrite(f)
    assert rewritten.has(nodes.expm1)
    assert sympy.simplify(rewritten.rewrite(sympy.exp) - f) == 0
    point = 1.0 + 2.0**-30
    with mpmath.workdps(50):
        truth = reference(
            lambda v: (
                (mpmath.power(v, mpmath.mpf(2) / 3) - mpmath.mpf(2) / 3 * v - mpmath.mpf(1) / 3)
                / (mpmath.mpf(1) / 3 * (mpmath.mpf(1) / 3 - 1))
            ),
            point,
        )
    naive = evaluate(f, [u], (point,), passes=())
    good = evaluate(rewritten, [u], (point,), passes=())
    with mpmath.workdps(50):
        naive_rel = abs(mpmath.mpf(naive) - truth) / truth
        good_rel = abs(mpmath.mpf(good) - truth) / truth
    # Only the u^(2/3) − 1 cancellation is removed; 3u − 3 is exact in floating point,
    # what is left is the O(ε) rounding of the three terms' sum relative to the O(h²) value.
    assert good_rel < naive_rel / 10


def test_rewrite_by_name_and_unknown_name():
    assert codegen.rewrite(sympy.log(1 + x), ["log1p"]) == nodes.log1p(x)
    assert codegen.rewrite(sympy.log(1 + x), ()) == sympy.log(1 + x)
    with pytest.raises(ValueError, match="unknown rewrite pass 'nope'"):
        codegen.rewrite(x, ["nope"])
    assert codegen.rewrite((sympy.log(1 + x), sympy.exp(x) - 1)) == (
        nodes.log1p(x),
        nodes.expm1(x),
    )


NODE_CASES = [
    (nodes.log1p(x), sympy.log(1 + x), {x: sympy.Rational(3, 7)}),
    (nodes.expm1(x), sympy.exp(x) - 1, {x: sympy.Rational(-2, 9)}),
    (
        nodes.logaddexp(x, y),
        sympy.log(sympy.exp(x) + sympy.exp(y)),
        {x: sympy.Rational(1, 3), y: sympy.Rational(-5, 4)},
    ),
    (nodes.softplus(x), sympy.log(1 + sympy.exp(x)), {x: sympy.Rational(7, 5)}),
    (nodes.log1mexp(x), sympy.log(1 - sympy.exp(x)), {x: sympy.Rational(-3, 11)}),
    (nodes.xlogy(x, y), x * sympy.log(y), {x: sympy.Rational(2, 3), y: sympy.Rational(5, 2)}),
    (nodes.xlog1py(x, y), x * sympy.log(1 + y), {x: sympy.Rational(2, 3), y: sympy.Rational(1, 8)}),
]


@pytest.mark.parametrize("node, elementary, point", NODE_CASES, ids=[type(c[0]).__name__ for c in NODE_CASES])
def test_nodes_value_and_derivatives(node, elementary, point):
    with mpmath.workdps(60):
        assert abs(sympy.N(node.subs(point), 50) - sympy.N(elementary.subs(point), 50)) < 1e-45
        for var in node.free_symbols:
            d_node = sympy.N(sympy.diff(node, var).subs(point), 50)
            d_elem = sympy.N(sympy.diff(elementary, var).subs(point), 50)
            assert abs(d_node - d_elem) < 1e-45
    assert sympy.simplify(node.as_elementary() - elementary) == 0 or isinstance(
        node.as_elementary(), sympy.Piecewise
    )


def test_node_evalf_keeps_relative_accuracy_at_tiny_arguments():
    tiny = sympy.Rational(1, 10**30)
    assert abs(sympy.N(nodes.log1p(tiny), 30) / tiny - (1 - tiny / 2)) < sympy.Rational(1, 10**28)
    assert abs(sympy.N(nodes.expm1(tiny), 30) / tiny - 1) < sympy.Rational(1, 10**28)
    assert sympy.N(nodes.xlogy(0, y)) == 0
