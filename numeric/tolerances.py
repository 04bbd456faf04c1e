r"""The one tolerance policy of divkit's numeric tests and checks.

Two kinds of claims, each with its own rule:

* **Kernel accuracy against a high-precision reference** (mpmath at 50 digits with the
  exact floats the kernel saw): relative error bounds per dtype, :data:`ACCURACY`, plus the
  row-wise bound of issue 3, :func:`row_bound`:
  :math:`|\text{err}| \le 64\,\varepsilon\,L\,(D + \sqrt D)` with
  :math:`L = 1 + \max|\text{logit}|` of the row and :math:`\varepsilon` the dtype's machine
  epsilon.
* **Same algorithm, another backend** (numpy vs C vs CUDA): ``rtol = 4 sqrt(eps)``,
  :func:`backend_rtol`; per-kernel overrides go in :data:`OVERRIDES` as
  ``{kernel: {dtype: (atol, rtol)}}``.

Comparisons go through :func:`assert_close`, which raises (never returns a bool) and also
checks dtype and shape.

>>> import numpy as np
>>> assert_close(np.float64(1.0), 1.0 + 1e-13, rtol=1e-12)
>>> assert_close(np.ones(2, np.float32), np.ones(2), rtol=1e-6)
Traceback (most recent call last):
...
AssertionError: dtype float32 != expected float64
"""

from __future__ import annotations

import numpy as np

__all__ = ["ACCURACY", "FUSED_FLOAT32", "OVERRIDES", "eps", "backend_rtol", "row_bound", "tolerance",
           "assert_close", "ALIGNMENT"]

#: Accuracy claims against the mpmath reference, by dtype name:
#: ``loss`` relative error on the bulk, ``grad`` relative L2 error per row on the bulk.
ACCURACY = {
    "float64": {"loss": 1e-12, "grad": 1e-11},
    "float32": {"loss": 1e-5, "grad": 1e-4},
    "float16": {"loss": 1e-2, "grad": 1e-2},
}

#: The fused from-logits row kernel in float32 (compiled CPU path, float64 arithmetic inside):
#: loss relative error, and the largest gradient error relative to the row's largest
#: gradient entry, against a 50-digit reference — on bulk rows and on peaky 128k-vocabulary
#: rows whose distributions barely overlap.
FUSED_FLOAT32 = {"loss": 1e-6, "grad_of_row_max": 1e-6}

#: Per-kernel overrides of the backend rule, ``{kernel: {dtype: (atol, rtol)}}``.
OVERRIDES: dict[str, dict[str, tuple[float, float]]] = {}

#: Constant of the row-wise bound of issue 3.
ROW_FACTOR = 64.0


def eps(dtype) -> float:
    """Machine epsilon of ``dtype``."""
    return float(np.finfo(np.dtype(dtype)).eps)


def backend_rtol(dtype) -> float:
    """``4·sqrt(eps)``: same algorithm on another backend."""
    return 4.0 * eps(dtype) ** 0.5


def tolerance(kernel: str, dtype) -> tuple[float, float]:
    """``(atol, rtol)`` for comparing ``kernel`` across backends in ``dtype``."""
    name = np.dtype(dtype).name
    return OVERRIDES.get(kernel, {}).get(name, (0.0, backend_rtol(dtype)))


def row_bound(dtype, logit_scale, value, extra=0.0):
    r"""The row-wise bound :math:`64\,\varepsilon\,L\,(\text{value} + \text{extra})`.

    Parameters
    ----------
    dtype : dtype of the kernel's input.
    logit_scale : array_like
        :math:`L = 1 + \max|\text{logit}|` per row (finite logits only).
    value : array_like
        :math:`D + \sqrt D` for the loss, :math:`\|\nabla\| + \sqrt D` for the gradient.
    """
    return ROW_FACTOR * eps(dtype) * np.asarray(logit_scale) * (np.asarray(value) + extra)


def assert_close(actual, expected, *, rtol=None, atol=0.0, dtype=None, shape=None,
                 equal_nan=False, err_msg=""):
    """Raise ``AssertionError`` unless ``actual`` matches ``expected`` elementwise.

    Checks, in order: the dtype of ``actual`` (``dtype``, default ``expected``'s dtype when
    it is a numpy array or scalar), the shape (``shape``, default ``expected``'s), then
    ``|actual - expected| <= atol + rtol |expected|`` with infinities required to match
    exactly and NaN allowed only with ``equal_nan``.
    """
    act = np.asarray(actual)
    exp = np.asarray(expected)
    want_dtype = np.dtype(dtype) if dtype is not None else (
        exp.dtype if isinstance(expected, (np.ndarray, np.generic)) else None)
    if want_dtype is not None and act.dtype != want_dtype:
        raise AssertionError(f"dtype {act.dtype} != expected {want_dtype} {err_msg}".rstrip())
    want_shape = tuple(shape) if shape is not None else exp.shape
    if act.shape != want_shape:
        raise AssertionError(f"shape {act.shape} != expected {want_shape} {err_msg}".rstrip())
    if rtol is None:
        rtol = backend_rtol(act.dtype if act.dtype.kind == "f" else np.float64)
    a = act.astype(np.float64)
    e = np.broadcast_to(exp.astype(np.float64), a.shape)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if (nan_a != nan_e).any() or (nan_a.any() and not equal_nan):
        raise AssertionError(f"NaN mismatch at {np.argwhere(nan_a | nan_e)[:5].tolist()} {err_msg}")
    inf = np.isinf(a) | np.isinf(e)
    if (a[inf] != e[inf]).any():
        raise AssertionError(f"infinity mismatch at {np.argwhere(inf & (a != e))[:5].tolist()} "
                             f"{err_msg}")
    fin = ~(inf | nan_a)
    err = np.abs(a[fin] - e[fin])
    bound = atol + rtol * np.abs(e[fin])
    if (err > bound).any():
        i = int(np.argmax(err - bound))
        raise AssertionError(
            f"not close: max excess at flat index {i}: actual {a[fin][i]!r}, expected "
            f"{e[fin][i]!r}, |err| {err[i]:.3e} > {bound[i]:.3e} (rtol={rtol}, atol={atol}) "
            f"{err_msg}".rstrip()
        )


# ---------------------------------------------------------------------- alignment (issue 8)
#: Tolerances of the alignment arrays (:mod:`numeric._preference`) and of the catalog claims
#: tagged ``alignment``. float64 results are compared with 50-digit mpmath references;
#: multiprecision results (the KKT policy, the Nash equilibrium) with an independent
#: multiprecision solver or a closed form.
ALIGNMENT = {
    #: losses, gradients and updates (D²O, DPH-RL away from u = 1, Nash-MP steps), relative
    "float64_rtol": 1e-13,
    #: f-DPG exact gradient against d/dθ of the 50-digit divergence, relative to max|grad|
    "fdpg_grad_rel": 1e-12,
    #: numeric.policy_from_reward against the exact KKT policy, relative per action
    #: (float64 rewards; the conditioning of (f')⁻¹ near f'(∞) costs digits)
    "kkt_float64_rel": 1e-9,
    #: D_f(π_T‖p) after 150 f-DPG descent steps of size 2/f''(1)
    "descent_divergence": 1e-20,
    #: float64 Nash-MP after 800 steps against the 50-digit equilibrium, absolute
    "nash_float64": 1e-13,
    #: 60-digit solvers against each other (KKT normaliser, equilibrium in softmax form)
    "mp_solution": 1e-45,
    #: 50-digit equilibrium against the two-action closed form
    "mp_closed_form": 1e-48,
}
