"""Generated code at run time: numpy callables, host-compiled C through ctypes, nvcc checks.

Everything goes through the on-disk cache of :mod:`numeric.codegen._cache`; nothing here
imports cupy (CUDA sources are only generated and, where ``nvcc`` exists, compiled).
"""

from __future__ import annotations

import ctypes
import hashlib
import linecache
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import sympy

from numeric.codegen._cache import (
    cache_dir,
    cache_key,
    cached_text,
    read_bytes,
    read_text,
    write_bytes,
    write_text,
)
from numeric.codegen._source import check_name, expression_hash, normalize_exprs, program, source
from numeric.codegen.printers import DTYPES, CodegenError
from numeric.codegen.rewrite import Pass, resolve_passes

__all__ = [
    "CompilerNotFoundError",
    "ForkSafeLock",
    "numpy_function",
    "compile_c",
    "c_function",
    "cuda_elementwise",
    "find_cc",
    "find_nvcc",
    "nvcc_check",
    "C_FLAGS",
]

#: Flags of every host compile: no fast-math, no FMA contraction (so results match
#: numpy's separately rounded operations), position-independent shared object.
C_FLAGS = ("-O2", "-shared", "-fPIC", "-std=c99", "-fno-fast-math", "-ffp-contract=off")

class ForkSafeLock:
    """A lock that a forked child gets fresh: a fork while another thread holds it (a
    compile in progress) would leave the child's copy locked forever. The compile itself
    is not in the child, which simply compiles again."""

    def __init__(self):
        self._lock = threading.Lock()
        _FORK_SAFE_LOCKS.add(self)

    def _renew(self):
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


_FORK_SAFE_LOCKS: weakref.WeakSet = weakref.WeakSet()


def _renew_locks_after_fork():
    for lock in list(_FORK_SAFE_LOCKS):
        lock._renew()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks_after_fork)

_lock = ForkSafeLock()
_numpy_memo: dict[str, Callable] = {}
_lib_memo: dict[str, ctypes.CDLL] = {}


class CompilerNotFoundError(RuntimeError):
    """No C compiler (``cc``) or no ``nvcc`` on this machine."""


def _key_parts(expr, args, name, passes) -> tuple[str, tuple, tuple, bool, str]:
    exprs, args, single = normalize_exprs(expr, args)
    digest = expression_hash(expr, args)
    chosen = resolve_passes(passes)
    if name is not None:
        check_name(name)
    return digest, exprs, args, single, ",".join(p.name for p in chosen)


def _generated_name(digest: str, name: str | None, target: str, dtype: str) -> str:
    if name is not None:
        return name
    base = f"divkit_{digest[:12]}"
    if target == "numpy":
        return base
    return base + ("_f32" if dtype == "float32" else "_f64")


# --------------------------------------------------------------------------- numpy


def _namespace(arrays):
    import array_api_compat

    real = [a for a in arrays if not isinstance(a, (int, float, bool, complex))]
    if not real:
        import array_api_compat.numpy as xp_numpy

        return xp_numpy
    return array_api_compat.array_namespace(*real)


def numpy_function(
    exprs,
    args: Sequence[sympy.Symbol] | None = None,
    *,
    name: str | None = None,
    passes: Sequence[Pass | str] | None = None,
) -> Callable:
    """A callable evaluating ``exprs`` elementwise on arrays of any array namespace.

    The numpy-target source (:func:`numeric.codegen.source`) is generated once, stored in
    the on-disk cache (keyed by the expression hash, target, name, passes and codegen
    version; checksummed, rebuilt when corrupt) and compiled with :func:`compile`.

    Parameters
    ----------
    exprs : sympy.Expr or sequence of sympy.Expr
        One expression (the callable returns one array) or several (it returns a tuple).
    args : sequence of sympy.Symbol, optional
        The positional parameters, in order (default: free symbols sorted by name).
    name : str, optional
        Name of the generated function (default ``divkit_<hash prefix>``).
    passes : sequence, optional
        Rewrite passes (default: all).

    Returns
    -------
    callable
        ``fn(*arrays, xp=None)``; ``xp`` defaults to the inputs' namespace
        (``array_api_compat.array_namespace``). Inputs broadcast together; the result has
        the inputs' floating dtype (integers compute in float64). ``fn.source`` is the
        generated source.

    Examples
    --------
    >>> import numpy as np, sympy
    >>> from numeric import codegen
    >>> x, y = sympy.symbols("x y", real=True)
    >>> f = codegen.numpy_function([sympy.log(1 + x), x * sympy.log(y)], [x, y])
    >>> log1p_x, x_log_y = f(np.array([1e-20, 0.0]), np.array([2.0, 0.0]))
    >>> log1p_x.tolist(), x_log_y.tolist()
    ([1e-20, 0.0], [6.931471805599452e-21, 0.0])
    """
    digest, exprs_t, args_t, single, pass_names = _key_parts(exprs, args, name, passes)
    fname = _generated_name(digest, name, "numpy", "any")
    key = cache_key("numpy", digest, fname, pass_names)
    with _lock:
        fn = _numpy_memo.get(key)
    if fn is not None:
        return fn
    path = cache_dir() / f"{key}.py"
    text = cached_text(
        path,
        lambda: source(exprs, target="numpy", name=fname, args=args_t, passes=passes),
        comment="#",
    )
    filename = f"<divkit-codegen {path.name}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict = {"__name__": f"divkit_generated_{key}"}
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    generated = namespace[fname]
    nargs = len(args_t)

    def call(*arrays, xp=None):
        if len(arrays) != nargs:
            names = ", ".join(a.name for a in args_t)
            raise TypeError(f"{fname}() takes {nargs} arrays ({names}), got {len(arrays)}")
        return generated(*arrays, xp=_namespace(arrays) if xp is None else xp)

    call.__name__ = fname
    call.__doc__ = generated.__doc__
    call.source = text
    call.args = args_t
    with _lock:
        _numpy_memo[key] = call
    return call


# --------------------------------------------------------------------------- host C


def find_cc() -> str | None:
    """The C compiler: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH; or None."""
    env = os.environ.get("CC")
    if env:
        return shutil.which(env) or env
    for candidate in ("cc", "gcc", "clang"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def compile_c(code: str, *, flags: Sequence[str] = C_FLAGS,
              libs: Sequence[str] = ()) -> ctypes.CDLL:
    """Compile C ``code`` to a shared object with the system compiler and load it.

    The shared object is cached on disk (keyed by the source, compiler, flags and
    platform; a ``.sha256`` sidecar detects a corrupt file, which is then rebuilt).

    Raises
    ------
    CompilerNotFoundError
        If no C compiler is found.
    numeric.codegen.CodegenError
        If compilation fails (the compiler's message is included).
    """
    cc = find_cc()
    if cc is None:
        raise CompilerNotFoundError("no C compiler found (set $CC or install cc/gcc/clang)")
    digest = hashlib.sha256(code.encode()).hexdigest()
    key = cache_key("c-shared", digest, cc, " ".join(flags), " ".join(libs), platform.machine(),
                    platform.system())
    with _lock:
        lib = _lib_memo.get(key)
    if lib is not None:
        return lib
    so_path = cache_dir() / f"{key}.so"
    if read_bytes(so_path) is None:
        with tempfile.TemporaryDirectory(prefix="divkit-cc-") as tmp:
            src = Path(tmp) / "kernel.c"
            out = Path(tmp) / "kernel.so"
            src.write_text(code)
            proc = subprocess.run(
                [cc, *flags, "-o", str(out), str(src), *libs, "-lm"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if proc.returncode != 0:
                raise CodegenError(f"C compilation failed ({cc}):\n{proc.stderr.strip()}")
            try:
                write_bytes(so_path, out.read_bytes())
            except OSError:  # unwritable cache: keep the library in a private temp dir
                so_path = Path(tempfile.mkdtemp(prefix="divkit-so-")) / so_path.name
                so_path.write_bytes(out.read_bytes())
    lib = ctypes.CDLL(str(so_path))
    with _lock:
        _lib_memo[key] = lib
    return lib


def c_function(
    exprs,
    args: Sequence[sympy.Symbol] | None = None,
    *,
    dtype: str = "float64",
    name: str | None = None,
    passes: Sequence[Pass | str] | None = None,
) -> Callable:
    """A numpy callable running the host-compiled C of ``exprs`` (through ctypes).

    The C source (:func:`numeric.codegen.source` with ``target="c"``) is cached like the
    numpy source; its ``name_array`` loop is compiled with :func:`compile_c`. This is how
    CPU-only CI runs the arithmetic of the GPU kernels: the CUDA printer emits the same
    body.

    Returns
    -------
    callable
        ``fn(*arrays)``: the inputs are broadcast and converted to ``dtype``; returns one
        numpy array or a tuple (as ``exprs``). ``fn.source`` is the C source.

    Examples
    --------
    >>> import numpy as np, sympy
    >>> from numeric import codegen
    >>> x = sympy.Symbol("x", real=True)
    >>> f = codegen.c_function(sympy.exp(x) - 1, [x], dtype="float32")
    >>> f(np.array([1e-10, 1.0]))
    array([1.0000000e-10, 1.7182817e+00], dtype=float32)
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
    digest, exprs_t, args_t, single, pass_names = _key_parts(exprs, args, name, passes)
    fname = _generated_name(digest, name, "c", dtype)
    key = cache_key("c", dtype, digest, fname, pass_names)
    path = cache_dir() / f"{key}.c"
    text = cached_text(
        path,
        lambda: source(exprs, target="c", dtype=dtype, name=fname, args=args_t, passes=passes),
        comment="//",
    )
    lib = compile_c(text)
    loop = getattr(lib, f"{fname}_array")
    nouts = 1 if single else len(exprs_t)
    loop.argtypes = [ctypes.c_longlong] + [ctypes.c_void_p] * (len(args_t) + nouts)
    loop.restype = None
    np_dtype = np.dtype(dtype)

    def call(*arrays):
        if len(arrays) != len(args_t):
            raise TypeError(f"{fname}() takes {len(args_t)} arrays, got {len(arrays)}")
        ins = np.broadcast_arrays(*[np.asarray(a, dtype=np_dtype) for a in arrays])
        ins = [np.ascontiguousarray(a) for a in ins]
        shape = ins[0].shape
        outs = [np.empty(shape, dtype=np_dtype) for _ in range(nouts)]
        loop(ctypes.c_longlong(ins[0].size), *[a.ctypes.data for a in ins], *[o.ctypes.data for o in outs])
        return outs[0] if single else tuple(outs)

    call.__name__ = fname
    call.source = text
    return call


# --------------------------------------------------------------------------- CUDA


def cuda_elementwise(
    exprs,
    args: Sequence[sympy.Symbol] | None = None,
    *,
    dtype: str = "float32",
    name: str | None = None,
    passes: Sequence[Pass | str] | None = None,
) -> dict:
    """The keyword arguments of a ``cupy.ElementwiseKernel`` computing ``exprs``.

    Does not import cupy: ``cupy.ElementwiseKernel(**spec)`` is the caller's step.

    Returns
    -------
    dict
        ``in_params`` (e.g. ``"float32 x, float32 y"``), ``out_params``, ``operation``
        (a call of the generated ``__device__`` function), ``name`` and ``preamble`` (the
        CUDA source of :func:`numeric.codegen.source`).

    Examples
    --------
    >>> import sympy
    >>> from numeric import codegen
    >>> x = sympy.Symbol("x", real=True)
    >>> spec = codegen.cuda_elementwise(sympy.log(1 + x), [x], name="lp")
    >>> spec["in_params"], spec["out_params"], spec["operation"]
    ('float32 x', 'float32 out0', 'out0 = lp(x)')
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
    prog = program(exprs, args, passes=passes)
    fname = _generated_name(prog.hash, name, "cuda", dtype)
    text = source(exprs, target="cuda", dtype=dtype, name=fname, args=prog.args, passes=passes)
    params = [prog.names[a] for a in prog.args]
    outs = [f"out{i}" for i in range(len(prog.outputs))]
    if prog.single:
        operation = f"out0 = {fname}({', '.join(params)})"
    else:
        operation = f"{fname}({', '.join(params + ['&' + o for o in outs])})"
    return {
        "in_params": ", ".join(f"{dtype} {p}" for p in params),
        "out_params": ", ".join(f"{dtype} {o}" for o in outs),
        "operation": operation,
        "name": f"{fname}_elementwise",
        "preamble": text,
    }


def find_nvcc() -> str | None:
    """``nvcc``: ``$NVCC``, else on the PATH, else ``/usr/local/cuda/bin/nvcc``; or None."""
    env = os.environ.get("NVCC")
    if env:
        return shutil.which(env) or (env if os.path.exists(env) else None)
    found = shutil.which("nvcc")
    if found:
        return found
    default = "/usr/local/cuda/bin/nvcc"
    return default if os.path.exists(default) else None


def nvcc_check(*sources: str, options: Sequence[str] = ("-std=c++17",)) -> str:
    """Compile CUDA sources (one translation unit) with ``nvcc -c``: a syntax/type check.

    Successful checks are remembered in the cache (keyed by the sources and options), so
    an unchanged source is compiled once.

    Returns
    -------
    str
        The nvcc path used.

    Raises
    ------
    CompilerNotFoundError
        If nvcc is not installed.
    numeric.codegen.CodegenError
        If nvcc rejects the source (its message is included).
    """
    nvcc = find_nvcc()
    if nvcc is None:
        raise CompilerNotFoundError("nvcc not found (set $NVCC or install the CUDA toolkit)")
    code = "\n".join(sources)
    digest = hashlib.sha256(code.encode()).hexdigest()
    key = cache_key("nvcc-ok", digest, nvcc, " ".join(options))
    marker = cache_dir() / f"{key}.nvcc-ok"
    if read_text(marker) == digest:
        return nvcc
    with tempfile.TemporaryDirectory(prefix="divkit-nvcc-") as tmp:
        src = Path(tmp) / "kernels.cu"
        src.write_text(code)
        proc = subprocess.run(
            [nvcc, "-c", *options, "-o", str(Path(tmp) / "kernels.o"), str(src)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if proc.returncode != 0:
        raise CodegenError(f"nvcc failed:\n{(proc.stderr or proc.stdout).strip()}")
    write_text(marker, digest, comment="//")
    return nvcc
