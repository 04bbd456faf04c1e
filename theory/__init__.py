"""divkit's symbolic layer: sympy objects only, no arrays.

- :mod:`theory.fdiv` — f-divergences from generators, derived quantities, the catalog;
- :mod:`theory.expfam` — exponential families from ψ and T, closed-form divergences;
- :mod:`theory.asymptotics` — the MLE risk to order n⁻² and the p-n criterion;
- :mod:`theory.parsing` — the whitelist parser for expressions given as text;
- :mod:`theory.alignment` — f-DPO, f-DPG, DPH-RL, D²O and Nash-MP forms derived from f;
- :mod:`theory.cauchy_schwarz` — Cauchy–Schwarz divergence closed forms (Gaussians, mixtures);
- ``u`` (the ratio p/q, positive) and ``t`` (the conjugate variable).

>>> from theory import u, fdiv
>>> fdiv.get("kl").f
u*log(u)
"""

from theory import alignment, asymptotics, cauchy_schwarz, expfam, fdiv, parsing
from theory._symbols import t, u

__all__ = ["u", "t", "fdiv", "expfam", "asymptotics", "parsing", "alignment", "cauchy_schwarz"]
