"""divkit's symbolic layer: sympy objects only, no arrays."""

from theory._symbols import t, u

__all__ = ["u", "t"]
