"""divkit's symbolic layer: sympy objects only, no arrays.

>>> from theory import u, fdiv
>>> fdiv.get("kl").f
u*log(u)
"""

from theory import fdiv  # noqa: E402  (fdiv needs the symbols first)
from theory._symbols import t, u

__all__ = ["u", "t", "fdiv"]
