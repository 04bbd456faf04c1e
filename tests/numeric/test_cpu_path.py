"""The compiled CPU path of ``numeric.divergence`` (numeric/_cpu.py) against mpmath.

Rows longer than one block (256) with a tail, of every kind the kernel branches on: far
apart, nearly equal (the Taylor region |log r| < 1/2), zero masses, tiny and subnormal
entries, unnormalised rows; every catalog member and parameter values near the special
ones. The reference is the definition sum_i q_i f(p_i/q_i) at 60 digits (mp_reference),
the bound the one of tests/numeric/test_divergence.py (64 eps times the error scale).
"""

from __future__ import annotations

import os

import mp_reference as ref
import mpmath
import numpy as np
import pytest
import sympy

import numeric
from numeric import _cpu, _kernels
from numeric import tolerances as tol
from numeric._forms import forms
from theory import fdiv

pytestmark = pytest.mark.skipif(not _cpu.available(), reason="no C compiler")

V = 300  # one full block and a tail

#: The default tier checks these catalog members (every kind of form: arithmetic, sqrt,
#: log1p/xlog1py, exp with a parameter); the others run in the slow tier.
DEFAULT_TIER = {"kl", "reverse_kl", "js", "hellinger", "alpha", "softened_rkl", "power"}

MEMBERS = [(name, {}) if name in DEFAULT_TIER else pytest.param(name, {}, marks=pytest.mark.slow)
           for name in fdiv.names()] + [
    ("js", {"beta": 2.0 ** -10}),
    ("power", {"alpha": 1.0 - 2.0 ** -24}),
    pytest.param("js", {"beta": 1.0 - 2.0 ** -24}, marks=pytest.mark.slow),
    pytest.param("alpha", {"alpha": 2.0 ** -40}, marks=pytest.mark.slow),
    pytest.param("alpha", {"alpha": 2.0}, marks=pytest.mark.slow),
    pytest.param("alpha", {"alpha": -1.0}, marks=pytest.mark.slow),
    pytest.param("power", {"alpha": 2.0}, marks=pytest.mark.slow),
]


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(V, 0.3), size=6)
    q = rng.dirichlet(np.full(V, 0.3), size=6)
    q[1] = p[1] * np.exp(0.4 * rng.uniform(-1, 1, V))  # |log r| < 1/2: the series
    q[1] /= q[1].sum()
    q[2] = p[2] * (1 + 1e-6 * rng.standard_normal(V))  # nearly equal, unnormalised
    p[3, ::7] = 0.0  # zero masses in P, in Q, in both
    q[3, ::5] = 0.0
    p[4, :40] = 1e-310  # subnormal P, tiny Q
    q[4, 40:80] = 1e-300
    q[5, :40] = 5e-324  # the smallest subnormal Q: p/q is not a float
    p[5, 40:80] *= 1e-3
    return p, q


P, Q = _rows()


def _scale(fd, p, q, value):
    """Error scale of a float evaluation (as in test_divergence.py): the size of the
    terms plus the condition of D in its inputs, plus |D| itself (zero-mass terms) and
    |f'(1)| sum(p + q) 2^-40 (the rounding of an unnormalised row's mass difference).
    A bound, so float64 (where it is finite) is accurate enough."""
    f = sympy.lambdify(ref.u, fd.f, "mpmath")
    df = sympy.lambdify(ref.u, sympy.diff(fd.f, ref.u), "mpmath")
    with mpmath.workdps(30):
        df1 = df(mpmath.mpf(1))
        live = (p > 0) & (q > 0)
        total = abs(value) + abs(df1) * float(np.sum(p) + np.sum(q)) * mpmath.mpf(2) ** -40
        for a, b in zip(p[live], q[live], strict=True):
            r = mpmath.mpf(a) / mpmath.mpf(b)
            total += abs(b * f(r)) + a * abs(df(r) - df1) * (1 + abs(np.log(a)) + abs(np.log(b)))
        return float(total)


@pytest.mark.parametrize(("name", "params"), MEMBERS, ids=lambda x: str(x))
def test_compiled_rows_against_mpmath(name, params):
    """The compiled path and the numpy path (no compiler), each against mpmath."""
    bound = forms(name, **params)
    compiled = _kernels.divergence_rows(bound, P, Q)
    numpy_path = _kernels._divergence_rows_numpy(bound, P, Q)
    # the member at the exact binary value of the float parameter the kernel receives
    fd = fdiv.get(name, **{k: sympy.Rational(v) for k, v in params.items()})
    for i in range(P.shape[0]):
        want = ref.divergence(fd, ref._exact(P[i]), ref._exact(Q[i]))
        if mpmath.isinf(want) or abs(want) > np.finfo(np.float64).max:
            # inf, or beyond the floats
            assert compiled[i] == numpy_path[i] == float(want), (name, params, i)
            continue
        bound_i = 64 * tol.eps(np.float64) * _scale(fd, P[i], Q[i], want)
        for path, got in (("compiled", compiled), ("numpy", numpy_path)):
            err = abs(float(got[i]) - float(want))
            assert err <= bound_i, (path, name, params, i, got[i], float(want), err, bound_i)


@pytest.mark.parametrize(("name", "params"), [("kl", {}), ("js", {}), ("power", {}),
                                             ("softened_rkl", {})], ids=lambda x: str(x))
def test_float32_input_is_read_as_is_and_computed_in_float64(name, params):
    bound = forms(name, **params)
    p32, q32 = P.astype(np.float32), Q.astype(np.float32)
    s32, d32, st32 = _cpu.divergence_rows(bound, p32, q32)
    s64, d64, st64 = _cpu.divergence_rows(bound, p32.astype(np.float64), q32.astype(np.float64))
    # the same float64 arithmetic on the same values; only the order of the vectorised
    # partial sums may differ
    np.testing.assert_array_equal(st32, st64)
    done = st32 == 1
    np.testing.assert_allclose(s32[done], s64[done], rtol=1e-14, atol=0)
    np.testing.assert_allclose(d32, d64, rtol=0, atol=4 * tol.eps(np.float64))
    out = numeric.divergence(fdiv.family(name)(**params) if params else name, p32, q32)
    assert out.dtype == np.float32


def test_divergence_takes_the_numpy_path_without_a_compiler(monkeypatch):
    calls = []
    monkeypatch.setattr(_cpu, "available", lambda: False)
    monkeypatch.setattr(_kernels, "_divergence_rows_numpy",
                        lambda *a, _f=_kernels._divergence_rows_numpy: calls.append(1) or _f(*a))
    out = numeric.divergence("js", P, Q)
    assert calls and out.shape == (P.shape[0],) and np.all(np.isfinite(out))


@pytest.mark.parametrize(("bad", "message"), [(np.nan, "finite"), (-1e-3, "nonnegative"),
                                              (np.inf, "finite")])
@pytest.mark.parametrize("which", ["p", "q"])
def test_bad_entries_found_by_the_kernel_are_named(bad, message, which):
    p, q = P[:2].copy(), Q[:2].copy()
    (p if which == "p" else q)[1, 290] = bad
    with pytest.raises(ValueError, match=f"{which} must be {message}"):
        numeric.divergence("kl", p, q)


def test_source_compiles_cleanly_with_warnings_as_errors():
    from numeric.codegen._runtime import find_cc

    cc = find_cc()
    import subprocess
    import tempfile
    from pathlib import Path

    for name in ("kl", "js", "power", "softened_rkl"):
        text = _cpu.host_kernel(forms(name)).source
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "k.c"
            src.write_text(text)
            proc = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                                   "-fopenmp-simd", "-DDK_VECTOR_MATH",
                                   "-c", str(src), "-o", str(Path(tmp) / "k.o")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, (name, proc.stderr)


def _child_divergence(queue):
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4096), size=64)
    q = rng.dirichlet(np.ones(4096), size=64)
    queue.put(float(numeric.divergence("kl", p, q).sum()))


def test_threads_survive_fork(monkeypatch):
    """Rows run on several threads in the parent, then in a forked child (no runtime
    state that deadlocks after fork, as OpenMP's does)."""
    import multiprocessing

    monkeypatch.setenv("DIVKIT_NUM_THREADS", "3")
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4096), size=64)
    q = rng.dirichlet(np.ones(4096), size=64)
    want = float(numeric.divergence("kl", p, q).sum())
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_divergence, args=(queue,))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the forked child hung"
    assert queue.get(timeout=5) == want


def test_thread_count_does_not_change_the_result(monkeypatch):
    bound = forms("js")
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(5000), size=37)
    q = rng.dirichlet(np.ones(5000), size=37)
    monkeypatch.setenv("DIVKIT_NUM_THREADS", "1")
    one = _kernels.divergence_rows(bound, p, q)
    monkeypatch.setenv("DIVKIT_NUM_THREADS", "4")
    four = _kernels.divergence_rows(bound, p, q)
    np.testing.assert_array_equal(one, four)  # rows are independent: bit for bit
    monkeypatch.setenv("DIVKIT_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="DIVKIT_NUM_THREADS"):
        _kernels.divergence_rows(bound, p, q)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_another_thread_compiles_leaves_the_child_able_to_compute(monkeypatch,
                                                                              tmp_path):
    """A fork while another thread holds the compile lock: the child computes (it compiles
    again under a fresh lock) instead of waiting forever for a lock no thread will release."""
    import signal
    import threading

    from numeric import codegen

    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_cpu, "_memo", {})
    real = codegen.compile_c
    entered, release = threading.Event(), threading.Event()

    def slow_compile(*args, **kwargs):
        entered.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(codegen, "compile_c", slow_compile)
    worker = threading.Thread(target=lambda: _cpu.host_kernel(forms("hellinger"))._fn("rows", "f64"))
    worker.start()
    assert entered.wait(60)
    pid = os.fork()
    if pid == 0:  # the child: compute, with an alarm instead of a hang
        code = 1
        try:
            signal.alarm(120)
            release.set()
            t = np.log(np.array([[0.2, 0.3, 0.5]]))
            s = np.log(np.array([[0.3, 0.3, 0.4]]))
            got = numeric.divergence_from_logits("hellinger", t, s, reduction="none")
            p, q = np.exp(t), np.exp(s)
            want = np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)  # hellinger: (sqrt(u) - 1)^2
            code = 0 if abs(float(got[0]) - want) <= 1e-12 * want else 2
        finally:
            os._exit(code)
    release.set()
    worker.join(120)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


# --------------------------------------------------------------------------- from logits


def _fused_rows(kind, v, seed):
    rng = np.random.default_rng(seed)
    if kind == "bulk":  # student = teacher + noise (the benchmark's rows)
        t = rng.standard_normal(v) * 3.0
        s = t + rng.standard_normal(v)
    else:  # peaky and barely overlapping: independent logits of scale 12
        t = rng.standard_normal(v) * 12.0
        s = rng.standard_normal(v) * 12.0
    return t.astype(np.float32), s.astype(np.float32)


def _check_fused_float32(name, kind, v, seed):
    t, s = _fused_rows(kind, v, seed)
    d_ref, g_ref = ref.from_logits_arb(fdiv_get(name), t, s)
    loss, gs = numeric.divergence_from_logits(name, t[None], s[None], reduction="none",
                                              return_grad=True)
    assert loss.dtype == np.float32 and gs.dtype == np.float32
    claim = tol.FUSED_FLOAT32
    rel = abs(float(loss[0]) - float(d_ref)) / float(d_ref)
    assert rel <= claim["loss"], f"{name} {kind}: loss rel err {rel:.2e}"
    g_ref = np.asarray(g_ref, dtype=np.float64)
    err = np.max(np.abs(gs[0].astype(np.float64) - g_ref)) / np.max(np.abs(g_ref))
    assert err <= claim["grad_of_row_max"], f"{name} {kind}: grad err {err:.2e} of max"


def fdiv_get(name):
    from theory import fdiv

    return fdiv.get(name)


def _catalog():
    from theory import fdiv

    return fdiv.names()


@pytest.mark.parametrize("name", _catalog())
def test_fused_float32_bulk_row_meets_the_claim(name):
    """float32 logits through the compiled row kernel: loss to 1e-6 relative, gradient to
    1e-6 of the row's largest entry, against a 100+-digit Arb reference of the same floats."""
    _check_fused_float32(name, "bulk", 4096, 3)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n not in ("kl", "js")
                                  else n for n in _catalog()])
def test_fused_float32_peaky_128k_row_meets_the_claim(name):
    """The 128256-entry rows where the two distributions barely overlap (where torch and
    Liger lose 1 % of the JS gradient in float32)."""
    _check_fused_float32(name, "peaky", 128256, 12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_results_identical_across_thread_counts(monkeypatch, dtype):
    rng = np.random.default_rng(4)
    t = (rng.standard_normal((16, 16384)) * 4).astype(dtype)
    s = (rng.standard_normal((16, 16384)) * 4).astype(dtype)
    t[3, 7] = -np.inf
    out = []
    for n in ("1", "2", "3"):
        monkeypatch.setenv("DIVKIT_NUM_THREADS", n)
        out.append(numeric.divergence_from_logits("js", t, s, reduction="none",
                                                  return_grad=True, teacher_grad=True))
    for other in out[1:]:
        for a, b in zip(out[0], other, strict=True):
            assert np.array_equal(a, b)


def test_fused_loss_identical_with_and_without_gradients():
    rng = np.random.default_rng(5)
    t = (rng.standard_normal((9, 3001)) * 5).astype(np.float32)
    s = (rng.standard_normal((9, 3001)) * 5).astype(np.float32)
    t[2, :5] = -np.inf
    s[4, 9] = -np.inf
    for name in ("kl", "tv", "alpha", "jeffreys"):
        plain = numeric.divergence_from_logits(name, t, s, reduction="none")
        with_g = numeric.divergence_from_logits(name, t, s, reduction="none", return_grad=True,
                                                teacher_grad=True)[0]
        assert np.array_equal(plain, with_g, equal_nan=True), name
