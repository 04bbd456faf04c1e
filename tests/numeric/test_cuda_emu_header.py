"""The emulation header itself, on small kernels whose results are known by hand.

Shuffles (xor, down, up, indexed, with width), ballot, shared memory per block,
``__syncthreads``, 2-D blocks, grid-stride loops, threads that return early, and an
intentionally broken copy of a generated kernel that the emulated comparison must reject.
"""

from __future__ import annotations

import cuda_emu
import numpy as np
import pytest

from numeric import _cuda_sources, _cupy
from numeric._forms import forms

pytestmark = pytest.mark.skipif(cuda_emu.find_gxx() is None,
                                reason="g++ (C++20, pthreads) is needed to emulate CUDA kernels")



@pytest.fixture(scope="module")
def mod():
    return cuda_emu.suite_module()


def test_warp_intrinsics(mod):
    out = np.full((2, 64, 6), -1, dtype=np.int32)
    mod.launch("warp_ops", (2,), (64,), [out])
    lane = np.arange(64) % 32
    for b in range(2):
        got = out[b]
        assert (got[:, 0] == 496).all()
        assert (got[:, 1] == np.where(lane + 3 < 32, lane + 3, lane)).all()
        assert (got[:, 2] == np.where(lane % 8 >= 1, lane - 1, lane)).all()
        assert (got[:, 3] == 50).all()
        assert (got[:, 4].view(np.uint32) == 0xAAAAAAAA).all()
        assert (got[:, 5] == lane ^ 4).all()


def test_shared_memory_block_barrier_and_grid_stride(mod):
    rng = np.random.default_rng(0)
    rows, bx, by = 5, 16, 4  # 2-D blocks of 64 threads, 2 blocks striding over 5 rows
    x = rng.integers(-1000, 1000, size=(rows, bx * by)).astype(np.float64)
    out = np.zeros(rows)
    mod.launch("block_sum", (2,), (bx, by), [rows, x, out])
    assert (out == x.sum(axis=1)).all()  # integers: exact in any order


def test_threads_that_return_do_not_block_the_others(mod):
    out = np.full(96, -1, dtype=np.int32)
    mod.launch("early_exit", (1,), (96,), [out])
    assert (out[:40] == np.arange(40) + 96).all() and (out[40:] == -1).all()


def test_invalid_launches_are_refused(mod):
    out = np.zeros(6 * 2048, dtype=np.int32)
    with pytest.raises(RuntimeError, match="emulated launch failed"):
        mod.launch("warp_ops", (1,), (2048,), [out])
    with pytest.raises(TypeError, match="must be an array or None"):
        mod.launch("warp_ops", (1,), (32,), [3])


@pytest.mark.slow
def test_a_broken_indexing_is_caught():
    """The comparison is not vacuous: a generated kernel whose row offset is off by one row
    element fails against numpy."""
    import numeric
    from numeric.tolerances import assert_close

    source, name = _cuda_sources.row_kernel_entry("kl", dtype="float64")
    assert source.count("row * V") >= 2
    good_line = "const DK_T *xs = student + row * V;"
    assert source.count(good_line) == 1
    broken = cuda_emu.build(source.replace(good_line, "const DK_T *xs = student + row * (V - 1);"))
    rng = np.random.default_rng(3)
    t, s = rng.standard_normal((3, 33)), rng.standard_normal((3, 33))
    loss = np.empty(3)
    values = {"rows": 3, "V": 33, "teacher": t, "student": s, "temperature": 1.0,
              "grad_scale": 1.0, "keep": None, "loss": loss, "grad_student": None,
              "grad_teacher": None, "cst": _cuda_sources.kernel_constants(forms("kl"))}
    broken.launch(name, (1,), (32,), _cupy.kernel_args(_cupy.kernel_params(source, name), values))
    want = numeric.divergence_from_logits("kl", t, s, reduction="none")
    with pytest.raises(AssertionError, match="not close"):
        assert_close(loss, want, rtol=1e-6)
    assert_close(loss[0], want[0], rtol=1e-12)  # row 0 is unaffected by the bug
