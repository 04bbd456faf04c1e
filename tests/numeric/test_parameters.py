"""Parametric families: one derivation per family, parameter values at run time.

Every parameterised catalog family is swept over 20 values, endpoints and near-endpoint
values included, against the 50-digit mpmath reference of the member at that exact value
(``fdiv.get(name, **value)``: the generator itself, never the kernels' forms); continuity
through every endpoint; a user family with a declared parameter end to end.
"""

from __future__ import annotations

import time

import mp_reference as ref
import numpy as np
import pytest
import sympy

import numeric
from numeric import tolerances as tol
from numeric._forms import family_forms, forms
from theory import fdiv
from theory import u as _U

UNIT = [0.0, 1e-12, 1e-7, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
        0.99, 1 - 1e-3, 1 - 1e-7, 1.0]
SWEEPS = {
    "js": UNIT,
    "js[normalized]": UNIT,
    "alpha": [-2.0, -0.5, -1e-3, 0.0, 1e-12, 1e-7, 1e-3, 0.1, 0.3, 0.5, 0.7, 0.9, 1 - 1e-7,
              1.0, 1 + 1e-12, 1.001, 1.5, 2.0, 3.0, 5.0],
    "power": [1e-12, 1e-7, 1e-3, 0.1, 0.25, 0.5, 0.75, 0.9, 1 - 1e-7, 1.0, 1 + 1e-12, 1 + 1e-7,
              1.001, 1.1, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0],
}
PARAM = {"js": "beta", "js[normalized]": "beta", "alpha": "alpha", "power": "alpha"}
#: The bounded form of the sweep (default tier): the special values and one value each side
#: of them, and one value inside; every value in the slow tier.
BOUNDED = {
    "js": [0.0, 1e-7, 0.5, 1 - 1e-7, 1.0],
    "js[normalized]": [1e-12, 0.3, 1 - 1e-7],
    "alpha": [-0.5, 0.0, 1e-7, 0.5, 1 - 1e-7, 1.0, 2.0],
    "power": [1e-7, 0.5, 1.0, 1 + 1e-7, 2.0],
}
SWEEP_CASES = [pytest.param(key, value, marks=() if value in BOUNDED[key] else pytest.mark.slow,
                            id=f"{key}-{value!r}")
               for key in sorted(SWEEPS) for value in SWEEPS[key]]


def _member(key, value):
    """The member at the exact binary value of the float the kernel receives."""
    name = key.split("[")[0]
    extra = {"normalized": True} if key.endswith("[normalized]") else {}
    return name, extra, fdiv.get(name, **{PARAM[key]: sympy.Rational(value)}, **extra)


def _rows():
    rng = np.random.default_rng(11)
    t = rng.standard_normal((3, 24)) * 3
    s = t + rng.standard_normal((3, 24)) * np.array([[2.0], [0.3], [1e-4]])  # far, close, nearly equal
    return t, s


@pytest.mark.parametrize(("key", "value"), SWEEP_CASES)
def test_parameter_sweep_against_mpmath(key, value):
    t, s = _rows()
    name, extra, _ = _member(key, SWEEPS[key][0])
    fam = fdiv.family(name, **extra)
    _, _, fd = _member(key, value)
    loss, grad = numeric.divergence_from_logits(fam, t, s, params={PARAM[key]: value},
                                                return_grad=True, reduction="none")
    for i in range(t.shape[0]):
        d_ref, g_ref, _ = ref.from_logits(fd, t[i].tolist(), s[i].tolist())
        d = float(d_ref)
        scale = 1.0 + float(np.max(np.abs(np.concatenate([t[i], s[i]]))))
        bound = tol.row_bound(np.float64, scale, d + np.sqrt(d))
        assert abs(float(loss[i]) - d) <= bound, (key, value, i, float(loss[i]), d)
        g = ref.to_float(g_ref)
        gnorm = float(np.linalg.norm(g))
        # near P = Q the gradient is q f''(1) (b - a - mean): the rounding of the logits
        # themselves (eps L) moves it by eps L f''(1) |q|, whatever the kernel
        q = np.exp(s[i] - np.logaddexp.reduce(s[i]))
        sens = abs(float(sympy.diff(fd.f, _U, 2).subs(_U, 1))) * float(np.linalg.norm(q))
        gbound = tol.row_bound(np.float64, scale, gnorm + np.sqrt(d) + sens)
        assert float(np.linalg.norm(grad[i] - g)) <= gbound, (key, value, i)


@pytest.mark.parametrize("key", sorted(SWEEPS))
def test_continuity_through_every_special_value(key):
    t, s = _rows()
    name, extra, _ = _member(key, SWEEPS[key][0])
    fam = fdiv.family(name, **extra)
    pname = PARAM[key]
    specials = sorted({float(v) for v in fam.singular_values(pname)}
                      | {float(e) for e in (fam._param(pname).domain.inf, fam._param(pname).domain.sup)
                         if e.is_finite})
    assert specials
    for v0 in specials:
        near = [v0 + d for d in (-1e-9, 1e-9) if fam._param(pname).domain.contains(
            sympy.Rational(repr(v0 + d))) is sympy.true]
        if fam._param(pname).domain.contains(sympy.Rational(repr(v0))) is not sympy.true:
            continue
        at = numeric.divergence_from_logits(fam, t, s, params={pname: v0}, reduction="none")
        for v in near:
            got = numeric.divergence_from_logits(fam, t, s, params={pname: v}, reduction="none")
            # dD/dθ is O(1 + D) on these rows: a 1e-9 step moves D by ~1e-9, never more
            tol.assert_close(got, at, rtol=1e-7, atol=1e-7,
                             err_msg=f"{key}: {pname} = {v} vs {v0}")


def test_one_derivation_serves_every_value():
    family_forms.cache_clear()
    fam = fdiv.family("js")
    t, s = _rows()
    start = time.perf_counter()
    for beta in np.linspace(0.3, 0.7, 9):
        numeric.divergence_from_logits(fam, t, s, params={"beta": float(beta)}, reduction="none")
    # the general forms once; the region forms near 0 and 1 are not needed in (1/4, 3/4)
    assert family_forms.cache_info().currsize == 1
    assert time.perf_counter() - start < 30  # guards against a derivation per value


def test_beta_1e_7_no_longer_hangs_and_is_right():
    t, s = _rows()
    start = time.perf_counter()
    d = numeric.divergence_from_logits(fdiv.get("js", beta="1e-7"), t, s, reduction="none")
    assert time.perf_counter() - start < 20
    d_ref = float(ref.from_logits(fdiv.get("js", beta="1e-7"), t[0].tolist(), s[0].tolist())[0])
    assert abs(float(d[0]) - d_ref) <= 1e-12 * d_ref
    assert (d >= 0).all()


def test_user_family_with_a_parameter_end_to_end():
    fam = fdiv.Family.from_string("(u**a - 1 - a*(u - 1))/(a*(a - 1))", params={"a": "1/2"})
    assert [float(v) for v in fam.singular_values("a")] == [0.0, 1.0]
    member = fam.at(a="0.3")
    assert member.family is fam and member.convexity_check.startswith("symbolic")
    t, s = _rows()
    for a in (0.3, 1e-9, 0.0, 2.5):
        loss, grad = numeric.divergence_from_logits(fam, t, s, params={"a": a}, return_grad=True,
                                                    reduction="none")
        fd = fam.at(a=repr(a))
        for i in range(2):
            d_ref, g_ref, _ = ref.from_logits(fd, t[i].tolist(), s[i].tolist())
            assert abs(float(loss[i]) - float(d_ref)) <= 1e-11 * float(d_ref) + 1e-300
            tol.assert_close(grad[i], ref.to_float(g_ref), rtol=1e-9, atol=1e-13)
    # the host C kernel of the member agrees with the numpy kernel
    from numeric import _cuda_sources

    run = _cuda_sources.host_row_kernel(fam.at(a="0.3"), dtype="float64")
    c_loss, c_grad, _ = run(t, s, teacher_grad=False)
    np_loss, np_grad = numeric.divergence_from_logits(fam, t, s, params={"a": 0.3}, return_grad=True,
                                                      reduction="none")
    scale = 1.0 + np.max(np.abs(np.concatenate([t, s], axis=1)), axis=1)
    bound = tol.row_bound(np.float64, scale, np_loss + np.sqrt(np_loss))
    assert (np.abs(c_loss - np_loss) <= bound).all(), (c_loss, np_loss, bound)
    gbound = tol.row_bound(np.float64, scale, np.linalg.norm(np_grad, axis=1) + np.sqrt(np_loss))
    assert (np.linalg.norm(c_grad - np_grad, axis=1) <= gbound).all()


def test_bad_parameters_get_clear_errors():
    fam = fdiv.family("js")
    t, s = _rows()
    with pytest.raises(ValueError, match="beta.*must lie in"):
        numeric.divergence_from_logits(fam, t, s, params={"beta": 1.5}, reduction="none")
    with pytest.raises(ValueError, match="no parameter"):
        numeric.divergence_from_logits("kl", t, s, params={"beta": 0.5}, reduction="none")
    with pytest.raises(ValueError, match="finite"):
        numeric.divergence_from_logits(fam, t, s, params={"beta": float("nan")}, reduction="none")
    assert forms("js", beta=0.25).theta == (0.25,)
