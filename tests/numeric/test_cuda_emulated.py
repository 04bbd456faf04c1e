"""The committed CUDA row kernels, run on the host through ``cuda_emu.h``, against numpy.

Every ``numeric/generated/divkit_<f>.cu`` is compiled unchanged (one translation unit, both
dtypes, cached on disk) after the emulation header: blocks of std::threads, std::barrier for
``__syncthreads``, warp shuffles per warp of 32. The arguments are built by the cupy
launcher's own :func:`numeric._cupy.kernel_args` from the parameter list parsed out of the
source, so a change of the entry signature breaks here first. Block sizes 32, 64 and 256
run the one-warp, two-warp and eight-warp reduction paths; rows > grid runs the grid-stride
loop; a dropped row, ``-inf`` logits (p = 0, q = 0, both) and a temperature run the masking
paths. The reference is :func:`numeric.divergence_from_logits` (numpy, float64 inside,
rounded to the dtype); tolerance: the backend rule of :mod:`numeric.tolerances` (``4·√eps``),
relative per entry, with the gradient entries measured against the row's largest entry.

Timing: the fast tier runs every catalog f in both dtypes on (rows 7, V 33, block 32) with a
mask, -inf and temperature, and on (rows 1, V 1271, block 256). The ``slow`` tier adds
V = 1, V = 31 with block 64 (more threads than entries), rows 7 × V 1271 with block 64, and
the 128256-wide row for one f per dtype (js in float32, kl in float64), which is where the
cost is.
"""

from __future__ import annotations

import cuda_emu
import numpy as np
import pytest

import numeric
from numeric import _cuda_sources, _cupy
from numeric.tolerances import assert_close, backend_rtol
from theory import fdiv

pytestmark = pytest.mark.skipif(cuda_emu.find_gxx() is None,
                                reason="g++ (C++20, pthreads) is needed to emulate CUDA kernels")

NAMES = fdiv.names()
TAG = {np.float32: "f32", np.float64: "f64"}


@pytest.fixture(scope="module")
def emu():
    files = sorted(_cuda_sources.GENERATED_DIR.glob("divkit_*.cu"))
    assert {p.stem.removeprefix("divkit_") for p in files} == set(NAMES)
    source = "\n".join(p.read_text() for p in files)
    return cuda_emu.build(source), source


def _logits(rng, rows, v, dtype, *, holes):
    t = (rng.standard_normal((rows, v)) * 3).astype(dtype)
    s = (rng.standard_normal((rows, v)) * 3).astype(dtype)
    if holes and v >= 4:
        for r in range(rows):
            t[r, r % v] = -np.inf              # p = 0 < q
            s[r, (r + 1) % v] = -np.inf        # q = 0 < p
            t[r, (r + 2) % v] = s[r, (r + 2) % v] = -np.inf  # both zero
    return t, s


def _run(emu, name, dtype, t, s, *, block, grid, temperature=1.0, mask=None):
    mod, source = emu
    kernel = f"divkit_{name}_{TAG[dtype]}_rows"
    params = _cupy.kernel_params(source, kernel)
    rows, v = t.shape
    loss = np.full(rows, np.nan, dtype)
    gs = np.full((rows, v), np.nan, dtype)
    gt = np.full((rows, v), np.nan, dtype)
    keep = None if mask is None else mask.astype(np.uint8)
    values = {"rows": rows, "V": v, "teacher": t, "student": s, "temperature": temperature,
              "grad_scale": 1.0 / temperature, "keep": keep, "loss": loss,
              "grad_student": gs, "grad_teacher": gt}
    mod.launch(kernel, (grid,), (block,), _cupy.kernel_args(params, values))
    return loss, gs, gt


def _compare(name, dtype, got, t, s, *, temperature=1.0, mask=None):
    want = numeric.divergence_from_logits(name, t, s, temperature=temperature, mask=mask,
                                          reduction="none", return_grad="both")
    rtol = backend_rtol(dtype)
    where = f"({name}, {np.dtype(dtype).name}, shape {t.shape})"
    assert_close(got[0], want[0], rtol=rtol, atol=rtol * np.finfo(dtype).eps ** 0.5,
                 err_msg=f"loss {where}")
    for label, g, w in (("grad_student", got[1], want[1]), ("grad_teacher", got[2], want[2])):
        assert g.dtype == w.dtype, f"{label} {where}: dtype {g.dtype} != {w.dtype}"
        finite = np.where(np.isfinite(w), np.abs(w), 0.0).astype(np.float64)
        row_scale = finite.max(axis=1, keepdims=True)
        row_scale[row_scale == 0] = 1.0
        # entries relative to the row's largest gradient entry: |g - w| <= rtol (|w| + max|w|)
        assert_close(g / row_scale, w / row_scale, rtol=rtol, atol=rtol, equal_nan=True,
                     err_msg=f"{label} {where}")


def _case(emu, name, dtype, rows, v, *, block, grid, holes=False, temperature=1.0, masked=False,
          seed=0):
    rng = np.random.default_rng([seed, rows, v, block, NAMES.index(name)])
    t, s = _logits(rng, rows, v, dtype, holes=holes)
    mask = None
    if masked:
        mask = np.ones(rows, dtype=bool)
        mask[rows // 2] = False
    got = _run(emu, name, dtype, t, s, block=block, grid=grid, temperature=temperature, mask=mask)
    _compare(name, dtype, got, t, s, temperature=temperature, mask=mask)
    return got


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_one_warp_grid_stride_mask_inf_temperature(emu, name, dtype):
    loss, gs, gt = _case(emu, name, dtype, 7, 33, block=32, grid=3, holes=True, temperature=0.7,
                         masked=True)
    assert loss[3] == 0 and not gs[3].any() and not gt[3].any()  # the dropped row
    assert not np.isnan(loss).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_eight_warps(emu, name, dtype):
    _case(emu, name, dtype, 1, 1271, block=256, grid=1)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_odd_shapes(emu, name, dtype):
    loss, gs, _ = _case(emu, name, dtype, 1, 1, block=32, grid=1)
    assert loss[0] == 0 and gs[0, 0] == 0  # one outcome: P = Q
    _case(emu, name, dtype, 7, 31, block=64, grid=7, holes=True)
    _case(emu, name, dtype, 7, 1271, block=64, grid=2, temperature=2.5, masked=True)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dtype"), [("js", np.float32), ("kl", np.float64)])
def test_vocabulary_width_row(emu, name, dtype):
    _case(emu, name, dtype, 1, 128256, block=256, grid=1, holes=True)


def test_argument_mismatch_is_caught(emu):
    mod, source = emu
    kernel = "divkit_kl_f32_rows"
    args = list(_cupy.kernel_args(_cupy.kernel_params(source, kernel),
                                  {"rows": 1, "V": 1, "teacher": None, "student": None,
                                   "temperature": 1.0, "grad_scale": 1.0, "keep": None,
                                   "loss": None, "grad_student": None, "grad_teacher": None}))
    args[4] = np.float64(1.0)  # a double where the kernel takes a float
    with pytest.raises(TypeError, match="argument 4 is a float"):
        mod.launch(kernel, (1,), (32,), args)
    with pytest.raises(KeyError, match="kernel parameter 'V'"):
        _cupy.kernel_args(_cupy.kernel_params(source, kernel), {"rows": 1})
