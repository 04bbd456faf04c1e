r"""The compiled CPU path: the host kernels of ``numeric/kernels/`` built per family.

One shared library per family region (:class:`numeric._forms.FamilyForms`), compiled from
``divkit_host.c`` and the family's printed forms (:mod:`numeric.codegen._files`) with the
host C compiler, cached on disk and in a :class:`HostKernel` object that the run path only
calls. The parameter values come at run time in the ``cst`` array of :mod:`numeric._abi`, so
a new value costs no compile. Two kernels:

* :meth:`HostKernel.from_logits` — the fused row kernel of
  :func:`numeric.divergence_from_logits`: per row an online log-sum-exp of both logit rows,
  the element terms and their compensated sums, and the gradient written once
  (``divkit_host_rows.h``); float32 logits are read and written as float32, the arithmetic
  is float64.
* :meth:`HostKernel.prob_rows` — the probability kernel of :func:`numeric.divergence`
  (``divkit_prob.h``): per element :math:`r = p/q` once and the standardised term
  :math:`qF(r) \ge 0`.

Rows are spread over threads: Python threads calling the C function, which runs without
the GIL (ctypes releases it; no OpenMP runtime, which is not fork-safe); a row is never
split, so results do not depend on the thread count. ``DIVKIT_NUM_THREADS`` sets the count.
The transcendental loops are vectorised with glibc's vector math library (libmvec, at most
4 ulp; ``-fopenmp-simd``, no ``-ffast-math``), compiled for this CPU (``-march=native``; the
cache key holds the CPU's model and flags). Without a C compiler the numpy path of
:mod:`numeric._kernels` answers; ``DIVKIT_NO_CC=1`` forces it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import threading

import numpy as np

from numeric import _abi
from numeric.codegen._runtime import ForkSafeLock

__all__ = ["available", "threads", "host_kernel", "HostKernel", "kernel_from_files",
           "divergence_rows", "from_logits_rows"]

_lock = ForkSafeLock()


@functools.lru_cache(maxsize=1)
def _cpu_id() -> str:
    """A short hash of this CPU's model and feature flags (``-march=native`` code is only
    valid on the CPU it was built for: another CPU rebuilds)."""
    text = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags")):
                    text += line
                if line.strip() == "":
                    break
    except OSError:
        import platform

        text = platform.processor() + platform.machine()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_BASE_FLAGS = ("-O2", "-ftree-vectorize", "-shared", "-fPIC", "-std=c99", "-fno-fast-math",
               "-ffp-contract=off", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math")


@functools.lru_cache(maxsize=1)
def _build() -> tuple | None:
    """``(flags, libs)`` of the host compile, or None without a compiler (or with
    ``DIVKIT_NO_CC`` set). ``-march=native`` and libmvec where the compiler takes them."""
    from numeric.codegen._runtime import find_cc

    if os.environ.get("DIVKIT_NO_CC") or find_cc() is None:
        return None
    flags = _BASE_FLAGS + (f"-DDK_CPU_ID={_cpu_id()}",)
    for extra, libs in ((("-march=native", "-DDK_VECTOR_MATH"), ("-lmvec",)),
                        (("-march=native",), ()), ((), ())):
        if _probe(flags + extra, libs):
            return flags + extra, libs
    return None


def _probe(flags, libs) -> bool:
    """Whether the compiler builds and loads a tiny library with these flags."""
    from numeric.codegen import compile_c
    from numeric.codegen._files import fixed_files

    code = fixed_files()["divkit_probe.c"]
    try:
        lib = compile_c(code, flags=flags, libs=libs)
        x = np.zeros(9)
        lib.dk_probe(ctypes.c_int(9), ctypes.c_void_p(x.ctypes.data))
        return bool(np.all(x == 1.0))
    except Exception:
        return False


def available() -> bool:
    """Whether the compiled path can run here (a C compiler was found)."""
    return _build() is not None


def threads() -> int:
    """Threads the compiled path uses: ``DIVKIT_NUM_THREADS``, else the CPUs this process
    may run on."""
    env = os.environ.get("DIVKIT_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"DIVKIT_NUM_THREADS must be an integer, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: Fewest elements per thread worth a thread.
_MIN_ELEMENTS_PER_THREAD = 1 << 16


def _run_rows(fn, rows: int, v: int, arrays, itemsizes, scalars=()):
    """``fn(rows, V, *pointers)`` over row ranges in parallel threads; the pointer of
    ``arrays[k]`` advances by ``itemsizes[k]`` bytes per row (0: the same for every row);
    ``scalars``, if given, maps the pointer list to the argument list."""
    n = min(threads(), rows, max(1, rows * v // _MIN_ELEMENTS_PER_THREAD))
    bounds = [rows * k // n for k in range(n + 1)]

    def call(lo, hi):
        if hi > lo:
            ptrs = [None if a is None else a.ctypes.data + lo * step
                    for a, step in zip(arrays, itemsizes, strict=True)]
            fn(hi - lo, v, *scalars(ptrs) if callable(scalars) else ptrs)

    if n == 1:
        call(0, rows)
        return
    workers = [threading.Thread(target=call, args=(bounds[k], bounds[k + 1]))
               for k in range(1, n)]
    for w in workers:
        w.start()
    call(bounds[0], bounds[1])
    for w in workers:
        w.join()


class HostKernel:
    """The compiled host kernels of one family region: built on first use, then only called.

    One shared library per (kernel, input dtype): the row kernel and the probability kernel,
    float32 and float64 input, each compiled from the same amalgamated source with the
    parts it needs (``DK_HOST_ROWS``, ``DK_HOST_PROB``, ``DK_IN_F32``, ``DK_IN_F64``).

    Attributes
    ----------
    family : str
        ``DK_FAMILY`` of the libraries.
    source : str
        The amalgamated C source they are compiled from.
    """

    def __init__(self, ff, family: str, source: str, build):
        self.family_forms = ff
        self.family = family
        self.source = source
        self._build = build
        self._fns: dict = {}

    def _fn(self, kind: str, tag: str):
        key = (kind, tag)
        fn = self._fns.get(key)
        if fn is not None:
            return fn
        from numeric.codegen import compile_c

        with _lock:
            fn = self._fns.get(key)
            if fn is not None:
                return fn
            flags, libs = self._build
            rows = kind == "rows"
            parts = (f"-DDK_HOST_ROWS={int(rows)}", f"-DDK_HOST_PROB={int(not rows)}",
                     f"-DDK_IN_F32={int(tag == 'f32')}", f"-DDK_IN_F64={int(tag == 'f64')}")
            lib = compile_c(self.source, flags=flags + parts, libs=libs)
            vp, ll, dd = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_double
            if rows:
                fn = getattr(lib, f"{self.family}_f64_rows_in{tag}")
                fn.argtypes = [ll, ll, vp, vp, dd, dd, vp, vp, vp, vp, vp]
                fn.restype = None
                self._fns[key] = fn
            else:
                fn = getattr(lib, f"{self.family}_f64_prob_rows_{tag}")
                fn.argtypes = [ll, ll] + [vp] * 7
                fn.restype = None
                diff = getattr(lib, f"{self.family}_f64_prob_diff_{tag}")
                diff.argtypes = [ll, ll] + [vp] * 4
                diff.restype = None
                self._fns[("diff", tag)] = diff
                self._fns[key] = fn
            return fn

    def from_logits(self, cst, t, s, *, temperature: float, grad_scale: float, gs=None,
                    gt=None):
        """Run the row kernel on (rows, V) C-contiguous logits of one dtype (float32 or
        float64); gradients are written into ``gs``/``gt`` (same shape and dtype) when
        given. Returns ``(loss float64 per row, status uint8 per row)`` (status bits in
        ``divkit_host_rows.h``)."""
        rows, v = t.shape
        fn = self._fn("rows", "f32" if t.dtype == np.float32 else "f64")
        loss = np.empty(rows, dtype=np.float64)
        status = np.empty(rows, dtype=np.uint8)
        rb = v * t.itemsize
        temp, scale = float(temperature), float(grad_scale)

        def args(ptrs):
            return ptrs[:2] + [temp, scale] + ptrs[2:]

        _run_rows(fn, rows, v, [t, s, cst, loss, gs, gt, status], [rb, rb, 0, 8, rb, rb, 1],
                  args)
        return loss, status

    def prob_rows(self, cst, p, q):
        """The probability kernel: ``(std_sum, diff, spread, status)`` per row."""
        rows, v = p.shape
        fn = self._fn("prob", "f32" if p.dtype == np.float32 else "f64")
        std_sum = np.empty(rows, dtype=np.float64)
        diff = np.empty(rows, dtype=np.float64)
        spread = np.empty(rows, dtype=np.float64)
        status = np.empty(rows, dtype=np.uint8)
        rb = v * p.itemsize
        _run_rows(fn, rows, v, [p, q, cst, std_sum, diff, spread, status],
                  [rb, rb, 0, 8, 8, 8, 1])
        return std_sum, diff, spread, status

    def prob_diff(self, p, q, sel, diff):
        """``sum_i (p_i - q_i)`` again, compensated per element, on the rows ``sel``."""
        rows, v = p.shape
        tag = "f32" if p.dtype == np.float32 else "f64"
        self._fn("prob", tag)
        rb = v * p.itemsize
        _run_rows(self._fns[("diff", tag)], rows, v, [p, q, sel, diff], [rb, rb, 1, 8])


_memo: dict[str, HostKernel] = {}


def host_kernel(bound) -> HostKernel:
    """The :class:`HostKernel` of the forms of ``bound`` (its libraries compile on first
    use)."""
    from numeric.codegen._files import (
        ENTRY_FILES,
        amalgamate,
        fixed_files,
        forms_hash,
        forms_header_of,
    )

    ff = bound.family_forms
    key = ff.__dict__.get("_cpu_key")
    if key is None:
        key = ff.__dict__["_cpu_key"] = forms_hash(ff)
    kern = _memo.get(key)
    if kern is not None:
        return kern
    build = _build()
    if build is None:
        raise RuntimeError("no C compiler for the compiled CPU path")
    with _lock:
        kern = _memo.get(key)
        if kern is None:
            family = "divkit_family"
            files = dict(fixed_files())
            files["divkit_forms.h"] = forms_header_of(ff, target="c", dtypes=("float64",),
                                                      name=family)
            kern = HostKernel(ff, family, amalgamate(files, ENTRY_FILES["c"]), build)
            _memo[key] = kern
    return kern


def kernel_from_files(bound, files: dict[str, str], family: str) -> HostKernel:
    """A :class:`HostKernel` compiled from ``files`` (as :func:`numeric.codegen.kernel_files`
    writes them: ``{name: text}``, entry ``divkit_host.c``, ``DK_FAMILY`` = ``family``) with
    this machine's build flags: how ``divkit codegen --check`` runs the files it wrote."""
    from numeric.codegen._files import ENTRY_FILES, amalgamate

    build = _build()
    if build is None:
        raise RuntimeError("no C compiler for the compiled CPU path")
    return HostKernel(bound.family_forms, family, amalgamate(files, ENTRY_FILES["c"]), build)


def divergence_rows(bound, p, q):
    """Row sums ``(sum q F(p/q), sum (p - q), status)`` of 2-D C-contiguous arrays of one
    dtype (float32 or float64), float64 sums; ``status`` is 1 on finished rows, 0 on rows
    with a negative, NaN or infinite entry, 2 on rows to evaluate in numpy;
    ``bound`` a :class:`numeric._forms.BoundForms`."""
    kern = host_kernel(bound)
    cst = _abi.kernel_constants(bound)
    std_sum, diff, spread, status = kern.prob_rows(cst, p, q)
    # f'(1) sum(p - q) is added to the standardised sum: where the rounding error of the
    # blockwise sum (about 2^-50 sum |p - q|) times |f'(1)| could reach 2^-46 of the
    # result, the sum again, compensated per element
    df1 = abs(bound.df_at_one)
    if df1 != 0.0:
        with np.errstate(invalid="ignore"):
            sel = (status == 1) & (df1 * 2.0 ** -50 * spread > 2.0 ** -46 * np.abs(std_sum))
        if sel.any():
            kern.prob_diff(p, q, np.ascontiguousarray(sel, dtype=np.uint8), diff)
    return std_sum, diff, status


def from_logits_rows(bound, t, s, *, temperature: float, grad_scale: float, gs=None, gt=None):
    """:meth:`HostKernel.from_logits` of ``bound``'s family with its constants."""
    return host_kernel(bound).from_logits(_abi.kernel_constants(bound), t, s,
                                          temperature=temperature, grad_scale=grad_scale,
                                          gs=gs, gt=gt)
