"""Turn sympy element expressions into numpy callables, through :mod:`numeric.codegen`.

Every kernel of :mod:`numeric` evaluates expressions that :mod:`numeric._forms` derived
from the generator ``f``; this module is the one place where such an expression becomes a
callable. It uses :func:`numeric.codegen.numpy_function` (stability rewrite, cse, numpy
printer, disk cache) and memoises the resulting callables per expression tuple.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import sympy

__all__ = ["compile_numpy"]


@functools.lru_cache(maxsize=1024)
def _compiled(exprs: tuple, args: tuple, name: str | None) -> Callable:
    from numeric import codegen

    if hasattr(codegen, "numpy_function"):
        return codegen.numpy_function(list(exprs), list(args), name=name)
    return _dev_lambdify(exprs, args)


def _dev_lambdify(exprs, args):  # development stand-in until numeric.codegen lands
    import numpy as np
    import scipy.special as sc

    mods = [{"log1p": np.log1p, "expm1": np.expm1, "logaddexp": np.logaddexp,
             "softplus": lambda x: np.logaddexp(0.0, x),
             "log1mexp": lambda x: np.where(x > -0.6931, np.log(-np.expm1(x)),
                                            np.log1p(-np.exp(x))),
             "xlogy": sc.xlogy, "xlog1py": sc.xlog1py}, "numpy"]
    fn = sympy.lambdify(list(args), list(exprs), modules=mods)
    return lambda *a, xp=None: fn(*a)


def compile_numpy(
    exprs: Sequence[sympy.Expr], args: Sequence[sympy.Symbol], *, name: str | None = None
) -> Callable:
    """A callable ``fn(*arrays)`` returning the tuple of ``exprs`` evaluated elementwise.

    Parameters
    ----------
    exprs : sequence of sympy.Expr
        Element expressions (already written with the stable nodes, or not: the code
        generator applies its rewrite passes).
    args : sequence of sympy.Symbol
        The positional arguments of the callable, in order.
    name : str, optional
        A readable name for the generated function.

    Returns
    -------
    callable
        ``fn(*arrays) -> tuple`` of arrays, one per expression.
    """
    exprs = tuple(sympy.sympify(e) for e in exprs)
    fn = _compiled(exprs, tuple(args), name)

    def call(*arrays):
        out = fn(*arrays)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        return tuple(out)

    return call
