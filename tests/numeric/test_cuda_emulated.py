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

Timing (threads of the emulation synchronise through the OS, so the cost is in the barriers,
about 20 µs × threads per barrier phase on 2 cores): the fast tier runs every catalog f in
both dtypes on (rows 7, V 33, block 32) with a mask, -inf and temperature, plus one of the
other shapes in turn (V = 1271 on 8 warps, V = 31 on 2 warps, V = 1, 7 × 1271 on 2 warps);
the ``slow`` tier runs the remaining shapes for every (f, dtype) and the 128256-wide row
for one f per dtype (js in float32, kl in float64).
"""

from __future__ import annotations

import cuda_emu
import numpy as np
import pytest

import numeric
from numeric import _cuda_sources, _cupy
from numeric._forms import forms
from numeric.tolerances import assert_close, backend_rtol
from theory import fdiv

pytestmark = pytest.mark.skipif(cuda_emu.find_gxx() is None,
                                reason="g++ (C++20, pthreads) is needed to emulate CUDA kernels")

NAMES = fdiv.names()
TAG = {np.float32: "f32", np.float64: "f64"}


@pytest.fixture(scope="module")
def emu():
    return cuda_emu.suite_module(), cuda_emu.suite_source()


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
              "grad_student": gs, "grad_teacher": gt,
              "cst": _cuda_sources.kernel_constants(forms(name))}
    mod.launch(kernel, (grid,), (block,), _cupy.kernel_args(params, values))
    return loss, gs, gt


def _compare(name, dtype, got, t, s, *, temperature=1.0, mask=None):
    want = numeric.divergence_from_logits(name, t, s, temperature=temperature, mask=mask,
                                          reduction="none", return_grad=True, teacher_grad=True)
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


#: (rows, V, block, grid, holes, temperature, masked): one warp with 2 entries per thread on
#: the last rows, eight warps, two warps with more threads than entries, a one-entry row,
#: two warps striding over 1271 entries and over rows.
CONFIGS = [
    (1, 1271, 256, 1, True, 1.0, False),
    (7, 31, 64, 7, True, 1.0, False),
    (1, 1, 32, 1, False, 1.0, False),
    (7, 1271, 64, 2, False, 2.5, True),
]
CASES = [(n, d) for n in NAMES for d in (np.float32, np.float64)]


def _ids(case):
    return f"{case[0]}-{TAG[case[1]]}"


def _config(emu, name, dtype, config):
    rows, v, block, grid, holes, temperature, masked = config
    got = _case(emu, name, dtype, rows, v, block=block, grid=grid, holes=holes,
                temperature=temperature, masked=masked)
    if v == 1:
        assert got[0][0] == 0 and got[1][0, 0] == 0  # one outcome: P = Q, no gradient


#: the default tier: every f once, the dtypes alternating (both dtypes of every f: slow tier)
DEFAULT_CASES = [(n, (np.float32, np.float64)[i % 2]) for i, n in enumerate(NAMES)]


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c in DEFAULT_CASES
                                               else pytest.mark.slow) for c in CASES], ids=_ids)
def test_kernel_agrees_with_numpy(emu, case):
    """Every f and dtype (each f in one dtype in the default tier): rows 7 × V 33 on one warp
    (3 blocks striding over 7 rows) with a dropped row, -inf logits and T = 0.7; plus one of
    CONFIGS in turn, so that each config runs for several (f, dtype) pairs here and for all
    of them in the slow tier."""
    name, dtype = case
    loss, gs, gt = _case(emu, name, dtype, 7, 33, block=32, grid=3, holes=True, temperature=0.7,
                         masked=True)
    assert loss[3] == 0 and not gs[3].any() and not gt[3].any()  # the dropped row
    assert not np.isnan(loss).any()
    _config(emu, name, dtype, CONFIGS[CASES.index(case) % len(CONFIGS)])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_every_config(emu, case):
    i = CASES.index(case) % len(CONFIGS)
    for config in CONFIGS[:i] + CONFIGS[i + 1:]:
        _config(emu, *case, config)


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
                                   "cst": None, "loss": None, "grad_student": None,
                                   "grad_teacher": None}))
    args[4] = np.float64(1.0)  # a double where the kernel takes a float
    with pytest.raises(TypeError, match="argument 4 is a float"):
        mod.launch(kernel, (1,), (32,), args)
    with pytest.raises(KeyError, match="kernel parameter 'V'"):
        _cupy.kernel_args(_cupy.kernel_params(source, kernel), {"rows": 1})
