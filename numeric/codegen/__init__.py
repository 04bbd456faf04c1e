"""Code generation from theory's sympy expressions: numpy, host C and CUDA.

Pipeline (``sympy.codegen`` style, our own implementation):

1. :func:`rewrite` — named, ordered numerical rewrite passes
   (:data:`rewrite.DEFAULT_PASSES`): ``log(1 + exp(x))`` → ``softplus``,
   ``c·softplus(x) − c·x`` → ``c·softplus(−x)``, ``log(Σ exp)`` → ``logaddexp``,
   ``log(1 - exp(x))`` → ``log1mexp``, ``log(1 + x)`` → ``log1p``, ``x**y - 1`` and
   ``exp(x) - 1`` → ``expm1``, ``x*log(y)`` → ``xlogy``, ``x*log1p(y)`` → ``xlog1py``
   (nodes in :mod:`numeric.codegen.nodes`);
2. common-subexpression elimination shared by a tuple of expressions (``Piecewise`` nodes
   stay whole, so that their branches are evaluated only where they hold);
3. a printer per target (:mod:`numeric.codegen.printers`): ``"numpy"`` (any array
   namespace ``xp``, masked branches), ``"c"`` (host C99, float or double) and ``"cuda"``
   (``__device__`` functions and a ``__global__`` loop, float32 or float64).

:func:`kernel_files` returns the fused row kernel and the probability kernel of a divergence
as C/CUDA files (``numeric/kernels/`` plus the printed forms) and :func:`kernel_constants`
their ``cst`` array; :func:`source` returns the labelled source text of one expression;
:func:`numpy_function` and :func:`c_function` return callables built through the on-disk
cache (``$DIVKIT_CACHE_DIR``, default ``~/.cache/divkit``); :func:`cuda_elementwise` gives the arguments of a
``cupy.ElementwiseKernel``; :func:`nvcc_check` compiles CUDA source with ``nvcc -c``.

Examples
--------
>>> import numpy as np, sympy
>>> from numeric import codegen
>>> x = sympy.Symbol("x", real=True)
>>> codegen.rewrite(sympy.log(1 + sympy.exp(x)))
softplus(x)
>>> f = codegen.numpy_function(sympy.log(1 + sympy.exp(x)), [x])
>>> f(np.array([-800.0, 0.0, 800.0])).tolist()
[0.0, 0.6931471805599453, 800.0]
"""

from numeric.codegen import nodes
from numeric.codegen._cache import cache_dir
from numeric.codegen._files import kernel_constants, kernel_files
from numeric.codegen._runtime import (
    C_FLAGS,
    CompilerNotFoundError,
    c_function,
    compile_c,
    cuda_elementwise,
    find_cc,
    find_nvcc,
    numpy_function,
    nvcc_check,
)
from numeric.codegen._source import (
    CODEGEN_VERSION,
    TARGETS,
    expression_hash,
    program,
    register_target,
    source,
    unregister_target,
)
from numeric.codegen.nodes import expm1, log1mexp, log1p, logaddexp, softplus, xlog1py, xlogy
from numeric.codegen.printers import CodegenError, UnsupportedFunctionError
from numeric.codegen.rewrite import DEFAULT_PASSES, PASSES, Pass, rewrite

__all__ = [
    "kernel_files",
    "kernel_constants",
    "source",
    "kernel_files",
    "kernel_constants",
    "rewrite",
    "numpy_function",
    "c_function",
    "compile_c",
    "cuda_elementwise",
    "nvcc_check",
    "find_cc",
    "find_nvcc",
    "cache_dir",
    "expression_hash",
    "program",
    "Pass",
    "DEFAULT_PASSES",
    "PASSES",
    "CodegenError",
    "UnsupportedFunctionError",
    "CompilerNotFoundError",
    "CODEGEN_VERSION",
    "TARGETS",
    "register_target",
    "unregister_target",
    "C_FLAGS",
    "nodes",
    "log1p",
    "expm1",
    "logaddexp",
    "softplus",
    "log1mexp",
    "xlogy",
    "xlog1py",
]
