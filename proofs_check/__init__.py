"""divkit's checking layer: high-precision references, claims and verdicts.

>>> import sympy
>>> from proofs_check import verify
>>> x = sympy.Symbol("x", positive=True)
>>> verify(sympy.Le(sympy.log(x), x - sympy.Rational(1, 2)), domain={x: (0.1, 10)}).status
'certified'
>>> verify(sympy.Le(x, sympy.log(x) + 1), domain={x: (0.1, 10)}).status     # false claim
'violated'
"""

from proofs_check import catalog, reference
from proofs_check.claims import (
    STATUSES,
    CallableClaim,
    Claim,
    Domain,
    ExpectationClaim,
    RateClaim,
    Verdict,
    verify,
)

__all__ = [
    "reference",
    "catalog",
    "verify",
    "Claim",
    "Domain",
    "Verdict",
    "ExpectationClaim",
    "RateClaim",
    "CallableClaim",
    "STATUSES",
]
