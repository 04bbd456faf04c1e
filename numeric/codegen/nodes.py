"""Sympy function nodes for numerically stable primitives.

Each node is an ordinary :class:`sympy.Function`: it differentiates (``fdiff``), evaluates
to arbitrary precision (``evalf`` goes through the exact elementary form at the requested
precision), and rewrites back to elementary functions with :meth:`as_elementary`. The
printers in :mod:`numeric.codegen.printers` map each node to a stable implementation
(a C99 / numpy function, or a small helper emitted with the generated code).

================  ==========================================  ===============================
node              value                                       why
================  ==========================================  ===============================
``log1p(x)``      :math:`\\log(1 + x)`                         exact for :math:`|x| \\ll 1`
``expm1(x)``      :math:`e^x - 1`                              exact for :math:`|x| \\ll 1`
``logaddexp(a,b)`` :math:`\\log(e^a + e^b)`                    no overflow / underflow
``softplus(x)``   :math:`\\log(1 + e^x)`                       no overflow for large ``x``
``log1mexp(x)``   :math:`\\log(1 - e^x)`, :math:`x \\le 0`      exact near 0 and for ``x → -∞``
``xlogy(x, y)``   :math:`x \\log y`, and 0 when :math:`x = 0`    the 0·log 0 = 0 convention
``xlog1py(x, y)`` :math:`x \\log(1 + y)`, and 0 when x = 0      both of the above
================  ==========================================  ===============================

Examples
--------
>>> import sympy
>>> from numeric.codegen.nodes import log1p, xlogy
>>> x, y = sympy.symbols("x y", real=True)
>>> log1p(x).diff(x)
1/(x + 1)
>>> xlogy(x, y).as_elementary()
Piecewise((0, Eq(x, 0)), (x*log(y), True))
>>> sympy.N(log1p(sympy.Float("1e-30", 40)), 20)
1.0000000000000000000e-30
"""

from __future__ import annotations

import mpmath
import sympy

__all__ = [
    "StableFunction",
    "log1p",
    "expm1",
    "logaddexp",
    "softplus",
    "log1mexp",
    "xlogy",
    "xlog1py",
    "NODES",
]


class StableFunction(sympy.Function):
    """Base class of divkit's stable nodes: evalf through the elementary form."""

    def as_elementary(self) -> sympy.Expr:
        """The same value written with elementary sympy functions only."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    @staticmethod
    def _mp(*args):
        """The value from mpmath numbers, in the current mpmath context."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def _eval_evalf(self, prec):
        # The arguments are evaluated with 64 guard bits and the value computed with
        # mpmath's own log1p/expm1 in a workprec context, so nothing cancels silently.
        if not all(a.is_number for a in self.args):
            return None
        try:
            with mpmath.workprec(prec + 64):
                mp_args = [a._to_mpmath(prec + 64) for a in self.args]
                value = self._mp(*mp_args)
                if isinstance(value, mpmath.mpc):
                    return None
                mpf_value = mpmath.mpf(value)._mpf_
        except (TypeError, ValueError, AttributeError):
            return None
        return sympy.Float._new(mpf_value, prec)

    def _eval_rewrite_as_log(self, *args, **kwargs):
        return self.func(*args).as_elementary()

    _eval_rewrite_as_exp = _eval_rewrite_as_log


class log1p(StableFunction):  # noqa: N801 - the C99 name
    """:math:`\\log(1 + x)`."""

    nargs = 1
    _mp = staticmethod(lambda x: mpmath.log1p(x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.S.Zero

    def fdiff(self, argindex=1):
        return 1 / (1 + self.args[0])

    def as_elementary(self):
        return sympy.log(1 + self.args[0])


class expm1(StableFunction):  # noqa: N801 - the C99 name
    """:math:`e^x - 1`."""

    nargs = 1
    _mp = staticmethod(lambda x: mpmath.expm1(x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.S.Zero

    def fdiff(self, argindex=1):
        return sympy.exp(self.args[0])

    def as_elementary(self):
        return sympy.exp(self.args[0]) - 1


class logaddexp(StableFunction):  # noqa: N801 - the numpy name
    """:math:`\\log(e^a + e^b)`, evaluated as :math:`\\max + \\operatorname{log1p}(e^{-|a-b|})`."""

    nargs = 2
    _mp = staticmethod(lambda a, b: max(a, b) + mpmath.log1p(mpmath.exp(-abs(a - b))))

    def fdiff(self, argindex=1):
        a, b = self.args
        if argindex == 1:
            return 1 / (1 + sympy.exp(b - a))
        return 1 / (1 + sympy.exp(a - b))

    def as_elementary(self):
        a, b = self.args
        return sympy.log(sympy.exp(a) + sympy.exp(b))


class softplus(StableFunction):  # noqa: N801
    """:math:`\\log(1 + e^x)` (= ``logaddexp(0, x)``)."""

    nargs = 1
    _mp = staticmethod(lambda x: max(x, 0) + mpmath.log1p(mpmath.exp(-abs(x))))

    def fdiff(self, argindex=1):
        return 1 / (1 + sympy.exp(-self.args[0]))

    def as_elementary(self):
        return sympy.log(1 + sympy.exp(self.args[0]))


class log1mexp(StableFunction):  # noqa: N801
    """:math:`\\log(1 - e^x)` for :math:`x \\le 0`.

    Evaluated (Mächler 2012) as ``log(-expm1(x))`` for :math:`x > -\\log 2` and
    ``log1p(-exp(x))`` otherwise; both branches are exact where they are used.
    """

    nargs = 1
    _mp = staticmethod(lambda x: mpmath.log(-mpmath.expm1(x)))

    def fdiff(self, argindex=1):
        x = self.args[0]
        return -1 / expm1(-x)

    def as_elementary(self):
        return sympy.log(1 - sympy.exp(self.args[0]))


class xlogy(StableFunction):  # noqa: N801 - the scipy name
    """:math:`x \\log y`, defined as 0 where :math:`x = 0` (whatever ``y``)."""

    nargs = 2
    _mp = staticmethod(lambda x, y: mpmath.mpf(0) if x == 0 else x * mpmath.log(y))

    @classmethod
    def eval(cls, x, y):
        if x.is_zero:
            return sympy.S.Zero
        if y == 1:
            return sympy.S.Zero

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return sympy.log(y)
        return x / y

    def as_elementary(self):
        x, y = self.args
        return sympy.Piecewise((0, sympy.Eq(x, 0)), (x * sympy.log(y), True))


class xlog1py(StableFunction):  # noqa: N801 - the scipy name
    """:math:`x \\log(1 + y)`, defined as 0 where :math:`x = 0` (whatever ``y``)."""

    nargs = 2
    _mp = staticmethod(lambda x, y: mpmath.mpf(0) if x == 0 else x * mpmath.log1p(y))

    @classmethod
    def eval(cls, x, y):
        if x.is_zero or y.is_zero:
            return sympy.S.Zero

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return log1p(y)
        return x / (1 + y)

    def as_elementary(self):
        x, y = self.args
        return sympy.Piecewise((0, sympy.Eq(x, 0)), (x * sympy.log(1 + y), True))


#: Every node class, by printed name.
NODES: dict[str, type[StableFunction]] = {
    cls.__name__: cls for cls in (log1p, expm1, logaddexp, softplus, log1mexp, xlogy, xlog1py)
}
