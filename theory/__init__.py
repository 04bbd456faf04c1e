"""divkit's symbolic layer: sympy objects only, no arrays.

- :mod:`theory.fdiv` — f-divergences from generators, derived quantities, the catalog;
- :mod:`theory.expfam` — exponential families from ψ and T, closed-form divergences;
- :mod:`theory.asymptotics` — the MLE risk to order n⁻² and the p-n criterion;
- :mod:`theory.cauchy_schwarz` — the Cauchy–Schwarz divergence, Gaussian/mixture closed forms;
- :mod:`theory.parsing` — the whitelist parser for expressions given as text;
- ``u`` (the ratio p/q, positive) and ``t`` (the conjugate variable).

>>> from theory import u, fdiv
>>> fdiv.get("kl").f
u*log(u)
"""

from theory import asymptotics, cauchy_schwarz, expfam, fdiv, parsing
from theory._symbols import t, u

__all__ = ["u", "t", "fdiv", "expfam", "asymptotics", "parsing", "cauchy_schwarz"]
