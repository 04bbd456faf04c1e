"""Host-compiled C of the generated from-logits kernels against numpy and mpmath.

The C body is the one the CUDA kernels run (one thread per row here). Error units follow
the issue's error model: with eps the dtype's machine epsilon and L = 1 + max|logit| of the
row, a loss difference is measured in units of eps·L·(D + √D) and a gradient difference
(L2 per row) in units of eps·L·(‖grad‖ + √D). Host C and numpy must agree to 4 such units
in float64 on the bulk (|logits| ≤ 20, D ≥ 1e-6), 16 times tighter than the accuracy bound
(64 units) that both must meet against mpmath.
"""

from __future__ import annotations

import ctypes
import zlib

import mpmath
import numpy as np
import pytest
import sympy

import numeric
from numeric import _cuda_sources, codegen
from theory import fdiv, u

pytestmark = pytest.mark.skipif(codegen.find_cc() is None, reason="no C compiler")

NAMES = fdiv.names()
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DIVKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def kernels():
    cache = {}

    def get(name, dtype="float64"):
        if (name, dtype) not in cache:
            cache[name, dtype] = _cuda_sources.host_row_kernel(name, dtype=dtype)
        return cache[name, dtype]

    return get


def _row_scale(t, s):
    finite = np.where(np.isfinite(t), np.abs(t), 0.0), np.where(np.isfinite(s), np.abs(s), 0.0)
    return 1.0 + np.maximum(finite[0].max(axis=1), finite[1].max(axis=1))


def _units(dtype, t, s, got, want, *, grad=False, loss_ref=None):
    """Per-row error of ``got`` vs ``want`` in eps·L·(D + √D) (or (‖g‖ + √D)) units."""
    eps = EPS[np.dtype(dtype).type]
    scale = _row_scale(np.asarray(t, float), np.asarray(s, float))
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return _units_of(eps, scale, got, want, grad, loss_ref)


def _norm(x):
    """Row L2 norms without overflow of the squares (gradients can be ~1e300)."""
    big = np.max(np.abs(x), axis=1, keepdims=True)
    safe = np.where(big > 0, big, 1.0)
    return np.linalg.norm(x / safe, axis=1) * safe[:, 0]


def _units_of(eps, scale, got, want, grad, loss_ref):
    if grad:
        d = np.asarray(loss_ref, dtype=np.float64)
        err = _norm(got - want)
        size = _norm(want) + np.sqrt(d)
    else:
        err = np.abs(got - want)
        size = want + np.sqrt(want)
    with np.errstate(divide="ignore", invalid="ignore"):
        units = err / (eps * scale * size)
    units[err == 0] = 0.0
    return units


def _reference_numpy(name, t, s, temperature=1.0):
    with np.errstate(all="ignore"):
        return numeric.divergence_from_logits(
            name, t, s, reduction="none", return_grad=True, teacher_grad=True, temperature=temperature
        )


def _bulk(rng, shape, sigma):
    t = np.clip(rng.normal(size=shape) * sigma, -20, 20)
    s = np.clip(rng.normal(size=shape) * sigma, -20, 20)
    return t, s


@pytest.mark.parametrize("name", NAMES)
def test_float64_matches_numpy_on_the_bulk(name, kernels):
    """Host C and numpy agree to 4 units on every bulk row; where they do not, the row is
    settled by the 50-digit reference: the C kernel must then be within 1 unit of it (the
    disagreement is the numpy kernel's rounding, which has its own 64-unit bound)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # stable across processes
    t, s = _bulk(rng, (41, 1271), 3.0)  # the weird shape
    t2, s2 = _bulk(rng, (6, 333), 0.3)  # closer rows, smaller D
    for tt, ss in ((t, s), (t2, s2)):
        loss, gs, gt = kernels(name)(tt, ss)
        want, want_gs, want_gt = _reference_numpy(name, tt, ss)
        bulk = want >= 1e-6
        assert bulk.sum() >= len(want) // 2
        worst = _units(np.float64, tt, ss, loss, want)
        for got, ref in ((gs, want_gs), (gt, want_gt)):
            worst = np.maximum(worst, _units(np.float64, tt, ss, got, ref, grad=True, loss_ref=want))
        disputed = np.flatnonzero(bulk & (worst > 4))
        assert disputed.size <= max(1, len(want) // 20), f"{disputed.size} rows differ by > 4 units"
        for r in disputed:
            d, ref_gs, ref_gt = _mp_row(name, tt[r], ss[r])
            rows = slice(r, r + 1)
            assert _units(np.float64, tt[rows], ss[rows], loss[rows], [d])[0] <= 1
            for got, ref in ((gs[r], ref_gs), (gt[r], ref_gt)):
                units = _units(np.float64, tt[rows], ss[rows], got[None], ref[None], grad=True,
                               loss_ref=[d])
                assert units[0] <= 1


@pytest.mark.parametrize("name", NAMES)
def test_float32_kernel_accuracy(name, kernels):
    """float32 arithmetic and float32 (compensated) sums vs the float64 numpy kernel."""
    rng = np.random.default_rng(5)
    t, s = _bulk(rng, (16, 1000), 2.0)
    t32, s32 = t.astype(np.float32), s.astype(np.float32)
    loss, gs, gt = kernels(name, "float32")(t32, s32)
    assert loss.dtype == gs.dtype == gt.dtype == np.float32
    want, want_gs, want_gt = _reference_numpy(name, t32.astype(np.float64), s32.astype(np.float64))
    bulk = want >= 1e-6
    rel = np.abs(loss - want) / want
    assert np.max(rel[bulk]) <= 1e-5
    for got, ref in ((gs, want_gs), (gt, want_gt)):
        rel_l2 = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
        assert np.max(rel_l2[bulk]) <= 1e-4
        units = _units(np.float32, t32, s32, got, ref, grad=True, loss_ref=want)
        assert np.max(units) <= 64
    assert np.max(_units(np.float32, t32, s32, loss, want)) <= 64


def _same_nonfinite(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(np.isposinf(a), np.isposinf(b))
    assert np.array_equal(np.isneginf(a), np.isneginf(b))


@pytest.mark.parametrize("name", NAMES)
def test_masked_logits_large_logits_and_temperature(name, kernels):
    rng = np.random.default_rng(9)
    t, s = _bulk(rng, (6, 501), 3.0)
    t[:, ::7] = -np.inf
    s[:, ::5] = -np.inf
    s[0, :] = np.where(np.arange(501) % 2 == 0, -np.inf, s[0])  # disjoint supports in row 0
    big_t = rng.normal(size=(3, 200)) * 1e3
    big_s = rng.normal(size=(3, 200)) * 1e3
    for tt, ss, temperature in ((t, s, 1.0), (t, s, 2.5), (big_t, big_s, 1.0), (big_t, big_s, 7.0)):
        loss, gs, gt = kernels(name)(tt, ss, temperature=temperature)
        want, want_gs, want_gt = _reference_numpy(name, tt, ss, temperature)
        _same_nonfinite(loss, want)
        ok = np.isfinite(want)
        scaled_t, scaled_s = tt / temperature, ss / temperature
        assert np.all(_units(np.float64, scaled_t, scaled_s, loss, want)[ok] <= 64)
        for got, ref in ((gs, want_gs), (gt, want_gt)):
            _same_nonfinite(got, ref)
            rows = np.all(np.isfinite(ref), axis=1) & ok
            units = _units(
                np.float64,
                scaled_t[rows],
                scaled_s[rows],
                got[rows],
                ref[rows],
                grad=True,
                loss_ref=want[rows],
            )
            assert np.all(units <= 64)
            # an entry masked in both rows has zero gradient (rows with a finite gradient)
            both = (np.isneginf(tt) & np.isneginf(ss))[rows]
            assert np.all(got[rows][both] == 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_identical_rows_give_exactly_zero(name, kernels):
    rng = np.random.default_rng(3)
    t = rng.normal(size=(5, 777)) * 4
    t[:, :3] = -np.inf
    for dtype in ("float64", "float32"):
        x = t.astype(dtype)
        loss, gs, gt = kernels(name, dtype)(x, x.copy())
        assert np.all(loss == 0.0)
        # every term vanishes: the minimum, so the gradients are exactly zero too
        assert np.all(gs == 0.0) and np.all(gt == 0.0)


def test_keep_mask_and_missing_gradients(kernels):
    rng = np.random.default_rng(4)
    t, s = _bulk(rng, (4, 300), 2.0)
    k = kernels("js")
    keep = np.array([1, 0, 1, 0], dtype=np.uint8)
    loss, gs, gt = k(t, s, keep=keep)
    full, full_gs, full_gt = k(t, s)
    assert loss[1] == 0.0 and loss[3] == 0.0
    assert np.all(gs[1] == 0.0) and np.all(gt[3] == 0.0)
    np.testing.assert_array_equal(loss[[0, 2]], full[[0, 2]])
    np.testing.assert_array_equal(gs[[0, 2]], full_gs[[0, 2]])
    only, no_gs, no_gt = k(t, s, student_grad=False, teacher_grad=False)
    assert no_gs is None and no_gt is None
    np.testing.assert_array_equal(only, full)
    with pytest.raises(ValueError, match="keep must have shape"):
        k(t, s, keep=np.ones(3))


def _mp_row(name, t_row, s_row):
    """D_f(P||Q) and both gradients of one row at 50 digits, from the exact float logits."""
    fd = fdiv.get(name)
    f = sympy.lambdify(u, fd.f, "mpmath")
    df = sympy.lambdify(u, fd.df, "mpmath")
    with mpmath.workdps(50):
        a = [mpmath.mpf(float(x)) for x in t_row]
        b = [mpmath.mpf(float(x)) for x in s_row]
        la = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in a))
        lb = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in b))
        p = [mpmath.exp(x - la) for x in a]
        q = [mpmath.exp(x - lb) for x in b]
        ratio = [pi / qi for pi, qi in zip(p, q, strict=True)]
        d = mpmath.fsum(qi * f(r_) for qi, r_ in zip(q, ratio, strict=True))
        g = [f(r_) - r_ * df(r_) for r_ in ratio]
        h = [df(r_) for r_ in ratio]
        mg = mpmath.fsum(qi * gi for qi, gi in zip(q, g, strict=True))
        mh = mpmath.fsum(pi * hi for pi, hi in zip(p, h, strict=True))
        ref_gs = np.array([float(qi * (gi - mg)) for qi, gi in zip(q, g, strict=True)])
        ref_gt = np.array([float(pi * (hi - mh)) for pi, hi in zip(p, h, strict=True)])
        return float(d), ref_gs, ref_gt


@pytest.mark.parametrize("name", NAMES)
def test_against_mpmath(name, kernels):
    """Loss and both gradients vs a 50-digit reference on the exact float inputs."""
    rng = np.random.default_rng(21)
    t, s = _bulk(rng, (2, 37), 2.5)
    loss, gs, gt = kernels(name)(t, s)
    for r in range(t.shape[0]):
        d, ref_gs, ref_gt = _mp_row(name, t[r], s[r])
        assert _units(np.float64, t[r : r + 1], s[r : r + 1], loss[r : r + 1], [d])[0] <= 64
        for got, ref in ((gs[r], ref_gs), (gt[r], ref_gt)):
            units = _units(
                np.float64, t[r : r + 1], s[r : r + 1], got[None], ref[None], grad=True, loss_ref=[d]
            )
            assert units[0] <= 64


def test_peaked_wide_rows_float32_js_gradient(kernels):
    """Normal logits ×12 on 128256-wide rows: the float32 JS gradient keeps 1e-4.

    torch and Liger-Kernel lose about 1 % of this gradient in float32
    (references/gpu-baselines.md).
    """
    rng = np.random.default_rng(12)
    t = (rng.normal(size=(2, 128256)) * 12).astype(np.float32)
    s = (rng.normal(size=(2, 128256)) * 12).astype(np.float32)
    loss, gs, gt = kernels("js", "float32")(t, s)
    want, want_gs, want_gt = _reference_numpy("js", t.astype(np.float64), s.astype(np.float64))
    assert np.max(np.abs(loss - want) / want) <= 1e-5
    for got, ref in ((gs, want_gs), (gt, want_gt)):
        assert np.max(np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)) <= 1e-4
    loss64, gs64, _ = kernels("js")(t.astype(np.float64), s.astype(np.float64))
    units = _units(np.float64, t, s, gs64, want_gs, grad=True, loss_ref=want)
    assert np.max(units) <= 64


# --------------------------------------------------------------------------- reductions

_HARNESS = """
void dk_test_partitioned(const double *x, long long n, int parts, double *out)
{
    /* emulate `parts` threads (strided partition, as the CUDA loops) and the xor-butterfly
       merges of the warp reduction; out = {max, sum without the max, comp, plain sum hi,
       plain sum lo, argmax} */
    double m[64], s[64], c[64], ps[64], pc[64];
    long long jj[64];
    for (int j = 0; j < parts; ++j) {
        m[j] = -(double)INFINITY; s[j] = 0.0; c[j] = 0.0; ps[j] = 0.0; pc[j] = 0.0; jj[j] = 0;
        for (long long i = j; i < n; i += parts) {
            dk_lse_push_f64(&m[j], &s[j], &c[j], &jj[j], x[i], i);
            if (x[i] != -(double)INFINITY) {
                dk_two_sum_f64(&ps[j], &pc[j], x[i]);
            }
        }
    }
    for (int o = parts / 2; o > 0; o >>= 1) {
        double m2[64], s2[64], c2[64], ps2[64], pc2[64];
        long long j2[64];
        for (int j = 0; j < parts; ++j) {
            m2[j] = m[j ^ o]; s2[j] = s[j ^ o]; c2[j] = c[j ^ o];
            ps2[j] = ps[j ^ o]; pc2[j] = pc[j ^ o]; j2[j] = jj[j ^ o];
        }
        for (int j = 0; j < parts; ++j) {
            dk_lse_merge_f64(&m[j], &s[j], &c[j], &jj[j], m2[j], s2[j], c2[j], j2[j]);
            dk_two_sum_f64(&ps[j], &pc[j], ps2[j]);
            pc[j] += pc2[j];
        }
    }
    out[0] = m[0]; out[1] = s[0]; out[2] = c[0];
    dk_split_f64(ps[0], pc[0], &out[3], &out[4]);
    out[5] = (double)jj[0];
}
"""


def test_partitioned_reductions_match_the_exact_values():
    """The merge steps of the CUDA block reductions, run on the host: log-sum-exp and
    compensated sums over 1..64 strided partitions agree with mpmath."""
    source = _cuda_sources.row_kernel_source("kl", target="c", dtypes=("float64",))
    lib = codegen.compile_c(source + _HARNESS)
    fn = lib.dk_test_partitioned
    fn.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_int, ctypes.c_void_p]
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(size=5000) * 30, [-np.inf] * 7, [600.0, 600.0]])
    rng.shuffle(x)
    finite = x[np.isfinite(x)]
    first_max = int(np.argmax(x))  # ties: the first index, as numpy.argmax
    with mpmath.workdps(60):
        lse = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in finite))
        total = mpmath.fsum(mpmath.mpf(float(v)) for v in finite)
    for parts in (1, 2, 8, 32, 64):
        out = np.empty(6)
        fn(x.ctypes.data, x.size, parts, out.ctypes.data)
        assert out[0] == 600.0 and int(out[5]) == first_max
        got_lse = out[0] + np.log1p(out[1] + out[2])
        assert abs(got_lse - float(lse)) <= 2 * np.spacing(float(lse))
        with mpmath.workdps(60):
            assert abs(mpmath.mpf(out[3]) + mpmath.mpf(out[4]) - total) <= abs(total) * 1e-30
        assert out[3] == float(total)
