"""Silent wrong answers of the old kernels, now regression tests against independent references.

- the loss must not depend on whether gradients are requested (neyman and alpha(2) lost up
  to 100 % of it with ``return_grad=True``: exp(−ℓ) written as expm1(−ℓ) + 1);
- js(β) far from ½ near P = Q: never negative, relative error within the stated bound.
"""

from __future__ import annotations

import mp_reference as ref
import numpy as np
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

import numeric
from numeric import tolerances as tol
from theory import fdiv

NAMES = fdiv.names()


def test_neyman_loss_with_and_without_gradient_equals_the_reference():
    t, s = np.array([[13.0, -2, 7]]), np.array([[34.0, -9, -55]])
    fd = fdiv.get("neyman")
    want = float(ref.from_logits(fd, t[0].tolist(), s[0].tolist())[0])   # 2.479e-3
    plain = numeric.divergence_from_logits("neyman", t, s, reduction="none")
    with_grad, _ = numeric.divergence_from_logits("neyman", t, s, return_grad=True, reduction="none")
    for got in (plain, with_grad):
        assert abs(float(got[0]) - want) <= 1e-13 * want


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(NAMES), scale=st.floats(0.1, 50.0), seed=st.integers(0, 2**16),
       masked=st.booleans())
@example(name="neyman", scale=12.0, seed=1, masked=False)
@example(name="alpha", scale=12.0, seed=2, masked=False)
def test_loss_is_the_same_with_and_without_gradients_and_never_negative(name, scale, seed,
                                                                         masked):
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((4, 16)) * scale
    s = rng.standard_normal((4, 16)) * scale
    if masked:
        t[0, :3] = -np.inf
        s[1, 2:5] = -np.inf
    mask = np.array([True, True, False, True])
    plain = numeric.divergence_from_logits(name, t, s, mask=mask, reduction="none")
    loss_s, _ = numeric.divergence_from_logits(name, t, s, mask=mask, return_grad=True, reduction="none")
    loss_b, _, _ = numeric.divergence_from_logits(name, t, s, mask=mask, return_grad=True,
                                                  teacher_grad=True, reduction="none")
    assert np.array_equal(plain, loss_s) and np.array_equal(plain, loss_b)
    assert (plain >= 0).all()


def test_js_small_beta_near_equal_rows_against_mpmath():
    rng = np.random.default_rng(5)
    for beta in ("0.001", "0.01", "0.999"):
        fd = fdiv.get("js", beta=beta)
        assert float(numeric.divergence(fd, np.array([0.5, 0.5]), np.array([0.5, 0.5]))) == 0.0
        for _ in range(20):
            q = rng.dirichlet(np.ones(6))
            p = q * (1 + 1e-6 * rng.standard_normal(6))
            p /= p.sum()
            got = float(numeric.divergence(fd, p, q))
            want = float(ref.divergence(fd, ref._exact(p), ref._exact(q)))
            assert got >= 0
            # the stated float64 accuracy: relative ACCURACY, or the row bound at L = 1 + max|log|
            scale = 1.0 + float(np.max(np.abs(np.log(np.concatenate([p, q])))))
            allowed = max(tol.ACCURACY["float64"]["loss"] * want,
                          float(tol.row_bound(np.float64, scale, want + np.sqrt(want))))
            assert abs(got - want) <= allowed, (beta, got, want)
    assert sympy.Rational(1, 1000) == fdiv.get("js", beta="0.001").params["beta"]
