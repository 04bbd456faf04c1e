"""SinKD, BD-KD and PLD losses against 50-digit mpmath references and central differences."""

import mpmath
import numpy as np
import pytest

import numeric
from numeric.tolerances import assert_close

DPS = 50


def _mp_softmax(z, temp=1):
    e = [mpmath.exp(mpmath.mpf(v) / temp) for v in z]
    s = mpmath.fsum(e)
    return [v / s for v in e]


def _mp_sinkd(t, s, temp, eps, n_iter):
    with mpmath.workdps(DPS):
        ps = [_mp_softmax(r, temp) for r in s]
        pt = [_mp_softmax(r, temp) for r in t]
        b = len(ps)
        w = [[mpmath.fsum(abs(ps[i][c] - pt[j][c]) for c in range(len(ps[i]))) for j in range(b)]
             for i in range(b)]
        x = [[mpmath.exp(-w[i][j] / eps) for j in range(b)] for i in range(b)]
        for _ in range(n_iter):
            x = [[v / mpmath.fsum(row) for v in row] for row in x]
            cols = [mpmath.fsum(x[i][j] for i in range(b)) for j in range(b)]
            x = [[x[i][j] / cols[j] for j in range(b)] for i in range(b)]
        return float(mpmath.fsum(x[i][j] * w[i][j] for i in range(b) for j in range(b)))


def _mp_kl(p, q):
    return mpmath.fsum(pi * mpmath.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def _mp_pld(t, s, label, temp):
    with mpmath.workdps(DPS):
        c = len(t)
        rest = sorted((k for k in range(c) if k != label), key=lambda k: (-t[k], k))
        order = ([label] if label is not None else []) + [k for k in rest if k != label]
        if label is None:
            order = sorted(range(c), key=lambda k: (-t[k], k))
        alpha = _mp_softmax(t, temp)
        out = 0
        for k in range(c):
            tail = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(s[j])) for j in order[k:]))
            out += alpha[order[k]] * (tail - s[order[k]])
        return float(out)


def _central(fn, s, h=1e-6):
    g = np.zeros_like(s)
    for idx in np.ndindex(*s.shape):
        e = np.zeros_like(s)
        e[idx] = h
        g[idx] = (float(fn(s + e)) - float(fn(s - e))) / (2 * h)
    return g


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    return 2.0 * rng.normal(size=(4, 5)), rng.normal(size=(4, 5))


def test_sinkd_matches_mpmath_and_gradient(logits):
    t, s = logits
    for temp, eps, n_iter in ((2.0, 0.1, 20), (1.0, 0.02, 7)):
        loss, g = numeric.sinkd_loss(t, s, temperature=temp, epsilon=eps, n_iter=n_iter,
                                     reduction="sum", return_grad=True)
        assert_close(loss, np.float64(_mp_sinkd(t, s, temp, eps, n_iter)), rtol=1e-12)
        num = _central(lambda z: numeric.sinkd_loss(t, z, temperature=temp, epsilon=eps,  # noqa: B023
                                                    n_iter=n_iter, reduction="sum"), s)  # noqa: B023
        assert_close(g, num, rtol=1e-5, atol=1e-8)


def test_sinkd_small_epsilon_does_not_underflow(logits):
    t, s = logits
    loss, g = numeric.sinkd_loss(t, s, epsilon=1e-4, return_grad=True)
    assert np.isfinite(loss) and np.isfinite(g).all()


def test_bdkd_matches_mpmath_and_gradient(logits):
    t, s = logits
    wf, wr = np.array([1.0, 0.5, 2.0, 0.0]), np.array([0.3, 1.0, 0.0, 1.5])
    temp = 1.7
    loss, g = numeric.bdkd_loss(t, s, temperature=temp, weights=(wf, wr), return_grad=True)
    with mpmath.workdps(DPS):
        ref = 0
        for i in range(4):
            pt, ps = _mp_softmax(t[i], temp), _mp_softmax(s[i], temp)
            ref += wf[i] * _mp_kl(pt, ps) + wr[i] * _mp_kl(ps, pt)
        ref = float(ref / 4)
    assert_close(loss, np.float64(ref), rtol=1e-12)
    num = _central(lambda z: numeric.bdkd_loss(t, z, temperature=temp, weights=(wf, wr)), s)
    assert_close(g, num, rtol=1e-5, atol=1e-9)


def test_bdkd_default_weights_follow_the_entropy_gap(logits):
    t, s = logits
    wf, wr = numeric.bdkd_entropy_weights(t, s)
    with mpmath.workdps(DPS):
        for i in range(4):
            ht = -mpmath.fsum(p * mpmath.log(p) for p in _mp_softmax(t[i]))
            hs = -mpmath.fsum(p * mpmath.log(p) for p in _mp_softmax(s[i]))
            delta = float((hs - ht) / mpmath.log(5))
            assert_close(np.float64(wf[i]), np.float64(1 + max(-delta, 0.0)), rtol=1e-13)
            assert_close(np.float64(wr[i]), np.float64(1 + max(delta, 0.0)), rtol=1e-13)
    loss = numeric.bdkd_loss(t, s)
    assert_close(loss, numeric.bdkd_loss(t, s, weights=(wf, wr)), rtol=1e-15)
    assert float(numeric.bdkd_loss(t, t)) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("labels", [None, np.array([4, 0, 2, 2])])
def test_pld_matches_mpmath_and_gradient(logits, labels):
    t, s = logits
    temp = 1.3
    loss, g = numeric.pld_loss(t, s, labels, temperature=temp, reduction="sum", return_grad=True)
    ref = sum(_mp_pld(t[i], s[i], None if labels is None else int(labels[i]), temp)
              for i in range(4))
    assert_close(loss, np.float64(ref), rtol=1e-12)
    num = _central(lambda z: numeric.pld_loss(t, z, labels, temperature=temp, reduction="sum"), s)
    assert_close(g, num, rtol=1e-5, atol=1e-9)
    # translation invariance in s, and no underflow of far-apart logits
    assert_close(numeric.pld_loss(t, s + 100.0, labels, temperature=temp, reduction="sum"), loss,
                 rtol=1e-12)
    far = s.copy()
    far[:, 1] = -800.0
    val = numeric.pld_loss(t, far, labels, reduction="none")
    assert np.isfinite(val).all()


def test_bad_input_is_refused(logits):
    t, s = logits
    with pytest.raises(ValueError, match="same shape"):
        numeric.sinkd_loss(t, s[:, :3])
    with pytest.raises(ValueError, match="epsilon"):
        numeric.sinkd_loss(t, s, epsilon=0.0)
    with pytest.raises(ValueError, match="student_logits must be finite"):
        numeric.pld_loss(t, s * np.nan)
    with pytest.raises(ValueError, match="labels"):
        numeric.pld_loss(t, s, np.array([0, 1, 2, 7]))
    with pytest.raises(ValueError, match="w_reverse"):
        numeric.bdkd_loss(t, s, weights=(1.0, -1.0))
    with pytest.raises(ValueError, match="temperature"):
        numeric.bdkd_loss(t, s, temperature=-1.0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_distill_losses_share_one_reduction_vocabulary(logits, reduction):
    """sinkd_loss, bdkd_loss, pld_loss: per-row values, their sum, their mean (the default),
    the sum over B; gradients of the reduced loss; the logits' dtype; return_grad a bool."""
    t, s = logits
    scale = {"none": 1.0, "sum": 1.0, "mean": 0.25, "batchmean": 0.25}[reduction]
    for fn in (numeric.sinkd_loss, numeric.bdkd_loss, numeric.pld_loss):
        per, g = fn(t, s, reduction="none", return_grad=True)
        got, h = fn(t, s, reduction=reduction, return_grad=True)
        want = per if reduction == "none" else np.asarray(per.sum() * scale)
        assert_close(got, want, rtol=1e-13)
        if reduction != "none":
            assert_close(h, g * scale, rtol=1e-12, atol=1e-300)
        assert_close(fn(t, s), np.asarray(per.mean()), rtol=1e-13)  # default "mean"
        out32 = fn(t.astype(np.float32), s.astype(np.float32), reduction=reduction)
        assert out32.dtype == np.float32
        with pytest.raises(ValueError, match="reduction"):
            fn(t, s, reduction="elementwise")
        with pytest.raises(TypeError, match="return_grad"):
            fn(t, s, return_grad="both")
