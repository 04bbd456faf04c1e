"""The symbols every part of divkit shares.

``u`` is the likelihood ratio ``p/q`` (positive), ``t`` the conjugate (dual) variable,
the argument of f* and of the policy map (f')⁻¹.
"""

import sympy

u = sympy.Symbol("u", positive=True)
t = sympy.Symbol("t", real=True)

__all__ = ["u", "t"]
