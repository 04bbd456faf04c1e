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
def _compiled(exprs: tuple, args: tuple, name: str | None, rewritten: bool) -> Callable:
    from numeric import codegen

    return codegen.numpy_function(list(exprs), list(args), name=name,
                                  passes=() if rewritten else None)


def compile_numpy(
    exprs: Sequence[sympy.Expr], args: Sequence[sympy.Symbol], *, name: str | None = None,
    rewritten: bool = True,
) -> Callable:
    """A callable ``fn(*arrays)`` returning the tuple of ``exprs`` evaluated elementwise.

    Parameters
    ----------
    exprs : sequence of sympy.Expr
        Element expressions.
    args : sequence of sympy.Symbol
        The positional arguments of the callable, in order.
    name : str, optional
        A readable name for the generated function.
    rewritten : bool
        True (default) when the expressions are final (:mod:`numeric._forms` already applied
        the codegen rewrite passes and chose the branch forms): no pass runs again.

    Returns
    -------
    callable
        ``fn(*arrays) -> tuple`` of arrays, one per expression.
    """
    exprs = tuple(sympy.sympify(e) for e in exprs)
    fn = _compiled(exprs, tuple(args), name, bool(rewritten))

    def call(*arrays):
        out = fn(*arrays)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        return tuple(out)

    return call
