"""The cupy route of numeric's public functions, without a GPU.

* cupy absent: a cupy-typed input gives an ImportError naming the ``cuda12``/``cuda13`` extras.
* a fake ``cupy`` module in ``sys.modules`` (numpy arrays of a subclass whose module is
  ``cupy``; ``RawModule`` compiles the CUDA source it is given, unchanged, with the host
  emulation of ``cuda_emu.h`` and launches it with the grid, block and arguments the
  launcher chose): the whole launcher — dtype policy, contiguity, mask, reductions, kernel
  cache, argument building, grid/block choice — runs and is compared with the numpy route.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import cuda_emu
import numpy as np
import pytest

import numeric
from numeric import _backend, _cupy
from numeric.tolerances import assert_close, backend_rtol


def _cupy_like_type():
    return type("ndarray", (), {"__module__": "cupy"})


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed here")
def test_cupy_input_without_cupy_names_the_extras(monkeypatch):
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    x = _cupy_like_type()()
    for call in (lambda: numeric.divergence_from_logits("kl", x, x, reduction="none"),
                 lambda: numeric.divergence("kl", x, x),
                 lambda: numeric.fdpo_loss("kl", x, x, x, x, beta=0.1),
                 lambda: numeric.policy_from_reward("kl", x, x, beta=0.1)):
        with pytest.raises(ImportError, match=r"'cuda12'.*'cuda13'"):
            call()
    assert "cupy" not in sys.modules


def test_cupy_detection_does_not_import_cupy():
    assert _backend.is_cupy_array(_cupy_like_type()())
    assert not _backend.uses_cupy(np.zeros(2), None, [1.0], 3.0)


def test_launch_config_covers_every_width():
    for v in (1, 2, 31, 32, 33, 127, 128, 129, 1271, 4095, 4096, 32000, 128256, 10**6):
        for rows in (1, 7, 4096, 10**6):
            grid, block = _cupy.launch_config(rows, v, sm_count=132)
            assert block % 32 == 0 and 32 <= block <= 1024
            assert 1 <= grid <= rows
            assert block <= 32 * -(-v // 32) or block == 32  # no warp without an element
            if v >= 4096:
                assert block == 1024
    with pytest.raises(ValueError, match="rows and V"):
        _cupy.launch_config(0, 5)


def test_compute_dtype_policy():
    bf16 = types.SimpleNamespace(name="bfloat16", kind="V")
    assert _cupy.compute_dtype(bf16) == "float32"
    assert _cupy.compute_dtype(np.dtype(np.float64)) == "float64"
    with pytest.raises(TypeError, match="unsupported dtype complex128"):
        _cupy.compute_dtype(np.dtype(np.complex128))


# ----------------------------------------------------------------------------- fake cupy


class _FakeArray(np.ndarray):
    """A host array that says it is a cupy array."""

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        return np.asarray(obj).view(type(self))


_FakeArray.__module__ = "cupy"
_FakeArray.__name__ = _FakeArray.__qualname__ = "ndarray"


def _fake(x):
    return np.asarray(x).view(_FakeArray)


def _host(x):
    return None if x is None else np.asarray(x).view(np.ndarray)


def _make_fake_cupy(record):
    cp = types.ModuleType("cupy")
    cp.ndarray = _FakeArray
    cp.uint8, cp.float32, cp.float64 = np.uint8, np.float32, np.float64
    cp.empty = lambda shape, dtype=float: _fake(np.empty(shape, dtype))
    cp.asarray = lambda x, dtype=None: _fake(np.array(x, dtype=dtype))
    cp.asnumpy = _host
    cp.moveaxis = lambda x, a, b: _fake(np.moveaxis(_host(x), a, b))
    cp.ascontiguousarray = lambda x, dtype=None: _fake(np.ascontiguousarray(_host(x), dtype=dtype))

    class Device:
        compute_capability = "90"
        attributes = {"MultiProcessorCount": 4, "MaxThreadsPerMultiProcessor": 2048}

    class RawModule:
        def __init__(self, code, options=()):
            record["modules"].append(options)
            self.emu = cuda_emu.build(code)

        def get_function(self, name):
            def launch(grid, block, args):
                record["launches"].append((name, grid, block))
                self.emu.launch(name, grid, block, [_host(a) if isinstance(a, np.ndarray) else a
                                                    for a in args])
            return launch

    cp.RawModule = RawModule
    cp.cuda = types.SimpleNamespace(Device=Device)
    return cp


@pytest.fixture
def fake_cupy(monkeypatch):
    record = {"modules": [], "launches": []}
    monkeypatch.setitem(sys.modules, "cupy", _make_fake_cupy(record))
    saved = dict(_cupy._kernels), dict(_cupy._devices)
    _cupy._kernels.clear()
    _cupy._devices.clear()
    yield record
    for cache, old in zip((_cupy._kernels, _cupy._devices), saved, strict=True):
        cache.clear()
        cache.update(old)


needs_gxx = pytest.mark.skipif(cuda_emu.find_gxx() is None, reason="g++ is needed to emulate CUDA")


def _inputs(rows, v, dtype, seed=0):
    rng = np.random.default_rng(seed)
    t = (rng.standard_normal((rows, v)) * 3).astype(dtype)
    s = (rng.standard_normal((rows, v)) * 3).astype(dtype)
    t[0, 1] = s[1, 2] = -np.inf
    return t, s


def _check(got, want, dtype):
    rtol = backend_rtol(dtype)
    assert _backend.is_cupy_array(got[0])
    assert_close(_host(got[0]), want[0], rtol=rtol, atol=rtol * 1e-3)
    for g, w in zip(got[1:], want[1:], strict=True):
        assert _backend.is_cupy_array(g)
        scale = float(np.abs(w[np.isfinite(w)]).max()) or 1.0
        # NaN where documented (the KL teacher gradient of a row with q = 0 < p)
        assert_close(_host(g) / scale, w / scale, rtol=rtol, atol=rtol, equal_nan=True)
        assert g.dtype == w.dtype


@needs_gxx
def test_float32_cupy_mask_batchmean_through_the_launcher(fake_cupy, monkeypatch):
    t, s = _inputs(7, 33, np.float32)
    mask = np.array([1, 1, 0, 1, 1, 1, 0], dtype=bool)
    kw = dict(temperature=0.8, reduction="batchmean", return_grad=True, teacher_grad=True)
    got = numeric.divergence_from_logits("js", _fake(t), _fake(s), mask=_fake(mask), **kw)
    want = numeric.divergence_from_logits("js", t, s, mask=mask, **kw)
    _check(got, want, np.float32)
    assert fake_cupy["modules"] == [_cupy.NVRTC_OPTIONS]
    grid, block = _cupy.launch_config(7, 33, sm_count=4)
    assert fake_cupy["launches"] == [("divkit_js_f32_rows", (grid,), (block,))]
    # float16 in: the same float32 kernel (compiled once) on float32 copies of 2 rows at a
    # time (chunk size forced down), gradients rounded to float16 chunk by chunk
    monkeypatch.setattr(_cupy, "CHUNK_BYTES", 2 * 4 * 33 * (2 + 2))
    got = numeric.divergence_from_logits("js", _fake(t.astype(np.float16)),
                                         _fake(s.astype(np.float16)), mask=mask, **kw)
    want = numeric.divergence_from_logits("js", t.astype(np.float16), s.astype(np.float16),
                                          mask=mask, **kw)
    _check(got, want, np.float16)
    assert len(fake_cupy["modules"]) == 1
    assert fake_cupy["launches"][1:] == [("divkit_js_f32_rows", (2,), (32,))] * 3 + [
        ("divkit_js_f32_rows", (1,), (32,))]


@pytest.mark.slow
@needs_gxx
def test_float64_other_axis_sum_and_none(fake_cupy):
    t, s = _inputs(5, 40, np.float64, seed=1)
    tt, st = np.ascontiguousarray(t.T), np.ascontiguousarray(s.T)  # vocabulary on axis 0
    for reduction in ("none", "mean"):
        got = numeric.divergence_from_logits("kl", _fake(tt), _fake(st), axis=0,
                                             reduction=reduction, return_grad=True)
        want = numeric.divergence_from_logits("kl", tt, st, axis=0, reduction=reduction,
                                              return_grad=True)
        _check(got, want, np.float64)
        assert got[1].shape == tt.shape
    # mixed float32 teacher / float64 student: the float64 kernel, teacher gradient rounded
    got = numeric.divergence_from_logits("kl", _fake(t.astype(np.float32)), _fake(s),
                                         return_grad=True, teacher_grad=True, reduction="none")
    want = numeric.divergence_from_logits("kl", t.astype(np.float32), s, return_grad=True,
                                          teacher_grad=True, reduction="none")
    _check(got, want, np.float32)
    loss = numeric.divergence_from_logits("kl", _fake(t), _fake(s), reduction="sum")
    assert _backend.is_cupy_array(loss) and loss.shape == ()
    assert [launch[0] for launch in fake_cupy["launches"]] == ["divkit_kl_f64_rows"] * 4
    assert len(fake_cupy["modules"]) == 1


def test_mixed_libraries_and_bad_arguments_are_refused(fake_cupy):
    t, s = _inputs(2, 4, np.float32)
    with pytest.raises(TypeError, match="student_logits: expected a cupy array"):
        numeric.divergence_from_logits("kl", _fake(t), s, reduction="none")
    with pytest.raises(ValueError, match="same shape"):
        numeric.divergence_from_logits("kl", _fake(t), _fake(s[:, :3]), reduction="none")
    with pytest.raises(ValueError, match="reduction"):
        numeric.divergence_from_logits("kl", _fake(t), _fake(s), reduction="avg")
    with pytest.raises(ValueError, match="mask must have the shape"):
        numeric.divergence_from_logits("kl", _fake(t), _fake(s), mask=_fake(np.ones(3, bool)),
                                       reduction="none")
    with pytest.raises(ValueError, match="temperature"):
        numeric.divergence_from_logits("kl", _fake(t), _fake(s), temperature=0.0, reduction="none")
    assert fake_cupy["launches"] == []


def test_host_round_trips_return_cupy_arrays(fake_cupy):
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(6), size=3)
    q = rng.dirichlet(np.ones(6), size=3)
    got = numeric.divergence("js", _fake(p), _fake(q))
    assert _backend.is_cupy_array(got)
    assert_close(_host(got), numeric.divergence("js", p, q), rtol=0)
    lp = np.log(rng.uniform(0.1, 0.9, size=(4, 4)))
    loss, (gw, gl) = numeric.fdpo_loss("kl", *map(_fake, lp), beta=0.1, return_grad=True)
    want = numeric.fdpo_loss("kl", *lp, beta=0.1, return_grad=True)
    assert all(_backend.is_cupy_array(x) for x in (loss, gw, gl))
    assert_close(_host(gl), want[1][1], rtol=0)
    res = numeric.policy_from_reward("kl", _fake(p), _fake(np.log(q)), beta=0.5)
    assert isinstance(res, numeric.PolicyResult) and _backend.is_cupy_array(res.policy)
    assert_close(_host(res.policy), numeric.policy_from_reward("kl", p, np.log(q), beta=0.5).policy,
                 rtol=0)


@pytest.mark.slow
def test_launcher_source_compiles_with_nvcc_and_the_launcher_options():
    from numeric import codegen
    from numeric._cuda_sources import row_kernel_entry

    if codegen.find_nvcc() is None:
        pytest.skip("nvcc not installed")
    source, name = row_kernel_entry("kl", dtype="float32")
    assert [p.name for p in _cupy.kernel_params(source, name)] == [
        "rows", "V", "teacher", "student", "temperature", "grad_scale", "keep", "cst", "loss",
        "grad_student", "grad_teacher"]
    nvrtc_like = tuple(o.replace("--std=c++14", "-std=c++17") for o in _cupy.NVRTC_OPTIONS)
    assert codegen.nvcc_check(source, options=nvrtc_like)
