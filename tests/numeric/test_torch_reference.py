"""Independent references for the torch tests: D_f(P||Q) written in torch from the catalog's
generator (sympy lambdified to torch), differentiated by torch autograd."""

from __future__ import annotations

import functools

import pytest
import sympy

from theory import fdiv, u

torch = pytest.importorskip("torch")


@functools.cache
def _generator(name: str, items: tuple):
    fam = fdiv.family(name)
    expr = fam.generator.subs({p.symbol: sympy.Rational(repr(v)) if isinstance(v, float) else v
                               for p, v in zip(fam.parameters, [dict(items).get(p.name, p.default)
                                                                for p in fam.parameters],
                                               strict=True)})
    return sympy.lambdify([u], expr, "torch")


def reference_rows(name, student, teacher, *, params=None, temperature=1.0):
    """Per-row D_f(softmax(teacher/T) || softmax(student/T)) = sum q f(p/q), autograd-able."""
    fn = _generator(name, tuple(sorted((params or {}).items())))
    q = torch.softmax(student / temperature, dim=-1)
    p = torch.softmax(teacher / temperature, dim=-1)
    return (q * fn(p / q)).sum(-1)


def reduce(rows, reduction, mask=None):
    keep = torch.ones(rows.shape, dtype=torch.bool) if mask is None else mask
    rows = torch.where(keep, rows, torch.zeros_like(rows))
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    if reduction == "mean":
        return rows.sum() / max(int(keep.sum()), 1)
    return rows.sum() / rows.shape[0]  # batchmean: the first dimension


def kl_torch(student, teacher, temperature=1.0):
    """KL(P||Q) mean over rows, the formula a torch user writes (log-softmax, no fusion)."""
    lq = torch.log_softmax(student / temperature, dim=-1)
    lp = torch.log_softmax(teacher / temperature, dim=-1)
    return (lp.exp() * (lp - lq)).sum(-1).mean()


def js_torch(student, teacher, temperature=1.0):
    """JS with beta = 1/2 (catalog "js"): (KL(P||M) + KL(Q||M)) / 2, M = (P + Q)/2, mean over
    rows."""
    lq = torch.log_softmax(student / temperature, dim=-1)
    lp = torch.log_softmax(teacher / temperature, dim=-1)
    lm = torch.logaddexp(lp, lq) - torch.log(torch.tensor(2.0, dtype=lp.dtype))
    d = 0.5 * (lp.exp() * (lp - lm)).sum(-1) + 0.5 * (lq.exp() * (lq - lm)).sum(-1)
    return d.mean()


# ------------------------------------------------------------- the references themselves
def test_reference_kl_is_the_closed_form():
    import math

    s = torch.log(torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    t = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    assert abs(float(reference_rows("kl", s, t)[0]) - 0.5 * math.log(4 / 3)) < 1e-15
    assert abs(float(kl_torch(s, t)) - 0.5 * math.log(4 / 3)) < 1e-15


def test_reference_js_formula_is_the_catalog_generator():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4, 9, dtype=torch.float64, generator=g)
    t = torch.randn(4, 9, dtype=torch.float64, generator=g)
    a = float(js_torch(s, t, 1.5))
    b = float(reference_rows("js", s, t, temperature=1.5).mean())
    assert abs(a - b) <= 1e-14 * abs(b)
