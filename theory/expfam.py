r"""Exponential families from their log-partition function, and closed forms between members.

A member of an exponential family has the density (with respect to a counting or Lebesgue
measure)

.. math::

    p_\theta(x) = h(x)\, \exp\bigl(\theta\cdot T(x) - \psi(\theta)\bigr),

with natural parameter :math:`\theta\in\Theta\subset\mathbb R^p`, sufficient statistic
:math:`T`, base measure :math:`h` and log-partition (cumulant) function :math:`\psi`.
Everything in this module is *derived from* :math:`\psi` (never typed in per family):

* mean map :math:`\eta = \nabla\psi(\theta)`, Fisher information :math:`\nabla^2\psi(\theta)`,
  and the inverse mean map where sympy can solve :math:`\nabla\psi(\theta)=\eta`;
* :math:`\mathrm{KL}(P\|Q) = \psi(\theta_q) - \psi(\theta_p) - \nabla\psi(\theta_p)\cdot
  (\theta_q-\theta_p)`, the Bregman divergence of :math:`\psi` (P is the first argument);
* with :math:`\theta_a = a\theta_p + (1-a)\theta_q` and
  :math:`M(a) = \int p^a q^{1-a} = \exp(\psi(\theta_a) - a\psi(\theta_p) - (1-a)\psi(\theta_q))`
  (finite exactly when :math:`\theta_a\in\Theta`):
  Rényi :math:`R_\alpha(P\|Q) = \log M(\alpha)/(\alpha-1)`, Bhattacharyya
  :math:`D_B = -\log M(1/2)`, squared Hellinger :math:`H^2 = \sum(\sqrt p-\sqrt q)^2 =
  2(1-\mathrm{BC})` with :math:`\mathrm{BC}=M(1/2)` (the convention of ``theory.fdiv``'s
  ``hellinger`` generator :math:`(\sqrt u-1)^2`);
* any f-divergence whose generator is a finite sum of terms :math:`c\,u^a(\log u)^m`:
  :math:`D_f(P\|Q) = \sum c\, M^{(m)}(a)`, since :math:`q\,(p/q)^a\log^m(p/q) =
  \partial_a^m\, p^a q^{1-a}`. This covers kl, reverse_kl, hellinger, pearson, neyman,
  alpha, power and jeffreys; tv, js, le_cam and softened_rkl have no such form and raise
  :class:`NoClosedForm`.

Standard parameters are named as in ``torch.distributions`` (``probs``, ``total_count``,
``rate``, ``loc``, ``scale``, ``concentration``, ``concentration1``/``concentration0``).

>>> import sympy
>>> from theory import expfam
>>> expfam.get("exponential").kl({"rate": 1}, {"rate": 2})
1 - log(2)
>>> g = expfam.get("gamma")
>>> a1, b1, a2, b2 = sympy.symbols("a1 b1 a2 b2", positive=True)
>>> kl = g.kl({"concentration": a1, "rate": b1}, {"concentration": a2, "rate": b2})
>>> ref = 1 + sympy.EulerGamma - 2*sympy.log(2)   # (a1-a2)digamma(a1) - ... by hand
>>> abs(sympy.N(kl.subs({a1: 2, b1: 1, a2: 3, b2: 2}) - ref, 30)) < 1e-28
True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import sympy

from theory._symbols import u

__all__ = [
    "ExponentialFamily",
    "NoClosedForm",
    "SymbolicDiagonalNormal",
    "get",
    "names",
]


class NoClosedForm(ValueError):
    """Raised when a quantity has no closed form that sympy can reach."""


def _as_expr(value, what: str) -> sympy.Expr:
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number or sympy expression, got bool")
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        # floats are taken as the exact binary value the user typed
        return sympy.Rational(value)
    if isinstance(value, str):
        raise TypeError(
            f"{what} must be a number or sympy expression, got str {value!r}; "
            "parse text with theory.parsing.parse_number first"
        )
    try:
        return sympy.sympify(value, strict=True)
    except (sympy.SympifyError, TypeError):
        raise TypeError(f"{what} must be a number or sympy expression, got {value!r}") from None


#: Slack of the categorical sum-to-one check, in units of k * 2**-53 (float rounding).
_SUM_ULPS = 16
#: Working precision (decimal digits) of closed forms evaluated for float parameters.
FLOAT_DPS = 40


def _has_float(params: Mapping) -> bool:
    vals = []
    for v in params.values() if isinstance(params, Mapping) else ():
        vals.extend(v if isinstance(v, (list, tuple)) else [v])
    return any(isinstance(v, float) for v in vals)


def _as_floats(params: Mapping) -> dict:
    """Float parameters as sympy Floats of FLOAT_DPS digits (the exact binary value):
    closed forms then evaluate in mpmath arithmetic instead of exact rational powers."""

    def conv(v):
        if isinstance(v, (list, tuple)):
            return tuple(conv(x) for x in v)
        if isinstance(v, float):
            return sympy.Float(v, FLOAT_DPS)
        return v

    return {k: conv(v) for k, v in params.items()}


def _check_numeric(cond: sympy.Basic, message: str) -> None:
    """Raise ValueError when ``cond`` is decidably false (symbolic values pass)."""
    if cond is sympy.false or cond is False:
        raise ValueError(message)


@dataclass(frozen=True, eq=False)
class ExponentialFamily:
    r"""An exponential family :math:`h(x)\exp(\theta\cdot T(x) - \psi(\theta))`.

    Parameters
    ----------
    name : str
        Family name (for messages and printing).
    theta : sequence of sympy.Symbol
        Natural parameter symbols :math:`\theta_1,\dots,\theta_p`.
    statistic : sequence of sympy.Expr
        Sufficient statistic :math:`T_1(x),\dots,T_p(x)` in ``variables``.
    variables : sequence of sympy.Symbol
        The observation's coordinates :math:`x` (one symbol for scalar observations).
    log_partition : sympy.Expr
        :math:`\psi(\theta)` in the ``theta`` symbols.
    log_base_measure : sympy.Expr
        :math:`\log h(x)` in ``variables``.
    support : sequence of sympy.Set
        Support of each coordinate of :math:`x`.
    discrete : bool
        Whether :math:`x` is integer valued (density with respect to counting measure).
    natural_domain : sympy.Boolean, optional
        Condition on the ``theta`` symbols defining the (open) natural parameter space
        :math:`\Theta`; ``True`` for :math:`\mathbb R^p`.
    params : sequence of str, optional
        Standard parameter names; defaults to the names of the ``theta`` symbols.
    to_natural, from_natural : callable, optional
        Conversions ``dict -> tuple`` and ``tuple -> dict`` between standard and natural
        parameters; identity on the theta names by default.
    validate : callable, optional
        ``validate(params_dict)`` raising ValueError for numeric values out of range.
    fixed : mapping, optional
        Fixed (non-estimated) parameters, e.g. ``{"total_count": 10}``.
    inverse_mean : callable or False, optional
        The closed-form inverse of the mean map, ``eta_tuple -> theta_tuple``, or ``False``
        when it is known to have none (digamma equations); by default
        :attr:`inverse_mean_map` asks ``sympy.solve`` (seconds for a categorical family
        with several classes).

    Examples
    --------
    A family defined by the user from :math:`\psi` and :math:`T` (the Poisson family):

    >>> import sympy
    >>> x, th = sympy.Symbol("x"), sympy.Symbol("theta")
    >>> fam = ExponentialFamily("my_poisson", theta=[th], statistic=[x], variables=[x],
    ...     log_partition=sympy.exp(th), log_base_measure=-sympy.log(sympy.factorial(x)),
    ...     support=[sympy.S.Naturals0], discrete=True)
    >>> fam.kl({"theta": 0}, {"theta": 1})
    -2 + E
    """

    name: str
    theta: tuple
    statistic: tuple
    variables: tuple
    log_partition: sympy.Expr
    log_base_measure: sympy.Expr
    support: tuple
    discrete: bool
    natural_domain: sympy.Basic = sympy.true
    params: tuple = ()
    to_natural_fn: Callable | None = field(default=None, repr=False)
    from_natural_fn: Callable | None = field(default=None, repr=False)
    validate_fn: Callable | None = field(default=None, repr=False)
    fixed: Mapping = field(default_factory=dict)
    inverse_mean_fn: Callable | bool | None = field(default=None, repr=False)

    def __init__(
        self,
        name: str,
        *,
        theta: Sequence[sympy.Symbol],
        statistic: Sequence[sympy.Expr],
        variables: Sequence[sympy.Symbol],
        log_partition: sympy.Expr,
        log_base_measure: sympy.Expr,
        support: Sequence[sympy.Set],
        discrete: bool,
        natural_domain: sympy.Basic = sympy.true,
        params: Sequence[str] | None = None,
        to_natural: Callable | None = None,
        from_natural: Callable | None = None,
        validate: Callable | None = None,
        fixed: Mapping | None = None,
        inverse_mean: Callable | bool | None = None,
    ):
        theta = tuple(theta)
        statistic = tuple(sympy.sympify(s) for s in statistic)
        variables = tuple(variables)
        support = tuple(support)
        if not theta or not all(isinstance(s, sympy.Symbol) for s in theta):
            raise TypeError("theta must be a non-empty sequence of sympy Symbols")
        if len(set(theta)) != len(theta):
            raise ValueError("theta symbols must be distinct")
        if len(statistic) != len(theta):
            raise ValueError(
                f"statistic has {len(statistic)} components but theta has {len(theta)}"
            )
        if not variables or not all(isinstance(v, sympy.Symbol) for v in variables):
            raise TypeError("variables must be a non-empty sequence of sympy Symbols")
        if len(support) != len(variables):
            raise ValueError("support needs one sympy Set per variable")
        if not all(isinstance(s, sympy.Set) for s in support):
            raise TypeError("support must be a sequence of sympy Sets")
        log_partition = sympy.sympify(log_partition)
        extra = log_partition.free_symbols - set(theta)
        if extra:
            raise ValueError(
                f"log_partition may depend only on theta, found {sorted(map(str, extra))}"
            )
        for s in statistic:
            if s.free_symbols & set(theta):
                raise ValueError("the statistic T(x) must not depend on theta")
        if params is None:
            params = tuple(str(s) for s in theta)
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "statistic", statistic)
        object.__setattr__(self, "variables", variables)
        object.__setattr__(self, "log_partition", log_partition)
        object.__setattr__(self, "log_base_measure", sympy.sympify(log_base_measure))
        object.__setattr__(self, "support", support)
        object.__setattr__(self, "discrete", bool(discrete))
        object.__setattr__(self, "natural_domain", sympy.sympify(natural_domain))
        object.__setattr__(self, "params", tuple(params))
        object.__setattr__(self, "to_natural_fn", to_natural)
        object.__setattr__(self, "from_natural_fn", from_natural)
        object.__setattr__(self, "validate_fn", validate)
        object.__setattr__(self, "fixed", dict(fixed or {}))
        if not (inverse_mean is None or inverse_mean is False or callable(inverse_mean)):
            raise TypeError("inverse_mean must be a callable, False or None")
        object.__setattr__(self, "inverse_mean_fn", inverse_mean)

    def __repr__(self) -> str:
        fixed = "".join(f", {k}={v}" for k, v in self.fixed.items())
        return f"ExponentialFamily({self.name!r}, p={self.dim}{fixed})"

    # ------------------------------------------------------------------ parameters
    @property
    def dim(self) -> int:
        """Dimension :math:`p` of the natural parameter."""
        return len(self.theta)

    def to_natural(self, params: Mapping) -> tuple:
        r"""Natural parameter :math:`\theta` (tuple of sympy expressions) of ``params``.

        ``params`` maps every standard parameter name to a number or sympy expression.
        Numeric values out of range raise ValueError.
        """
        if not isinstance(params, Mapping):
            raise TypeError(
                f"{self.name}: parameters must be a dict with keys {list(self.params)}, "
                f"got {type(params).__name__}"
            )
        missing = [k for k in self.params if k not in params]
        unknown = [k for k in params if k not in self.params]
        if missing or unknown:
            msg = f"{self.name}: expected parameters {list(self.params)}"
            if missing:
                msg += f", missing {missing}"
            if unknown:
                msg += f", unknown {unknown}"
                close = difflib.get_close_matches(unknown[0], self.params, n=1)
                if close:
                    msg += f" (did you mean {close[0]!r}?)"
            raise ValueError(msg)
        conv = {}
        for k in self.params:
            v = params[k]
            if isinstance(v, (list, tuple)):
                conv[k] = tuple(_as_expr(x, f"{self.name} parameter {k!r}") for x in v)
            else:
                conv[k] = _as_expr(v, f"{self.name} parameter {k!r}")
        if self.validate_fn is not None:
            self.validate_fn(conv)
        if self.to_natural_fn is None:
            theta = tuple(conv[k] for k in self.params)
        else:
            theta = tuple(sympy.sympify(v) for v in self.to_natural_fn(conv))
        if len(theta) != self.dim:
            raise ValueError(f"{self.name}: conversion gave {len(theta)} natural parameters")
        _check_numeric(
            self.in_domain(theta),
            f"{self.name}: parameters {dict(params)} give a natural parameter outside Θ",
        )
        return theta

    def from_natural(self, theta: Sequence) -> dict:
        """Standard parameters (dict) of a natural parameter vector."""
        theta = tuple(sympy.sympify(v) for v in theta)
        if len(theta) != self.dim:
            raise ValueError(f"{self.name}: expected {self.dim} natural parameters")
        if self.from_natural_fn is None:
            return dict(zip(self.params, theta, strict=True))
        return dict(self.from_natural_fn(theta))

    def in_domain(self, theta: Sequence) -> sympy.Basic:
        r"""The condition :math:`\theta\in\Theta` (a sympy Boolean; ``true``/``false`` if
        decidable)."""
        return self.natural_domain.subs(dict(zip(self.theta, theta, strict=True)))

    # ------------------------------------------------------------------ psi and derivatives
    def psi(self, theta: Sequence) -> sympy.Expr:
        r""":math:`\psi(\theta)` at a natural parameter vector."""
        return self.log_partition.subs(dict(zip(self.theta, theta, strict=True)), simultaneous=True)

    @cached_property
    def gradient(self) -> tuple:
        r""":math:`\nabla\psi` in the ``theta`` symbols (the mean map)."""
        return tuple(sympy.diff(self.log_partition, s) for s in self.theta)

    @cached_property
    def hessian(self) -> sympy.Matrix:
        r""":math:`\nabla^2\psi` in the ``theta`` symbols (Fisher information of
        :math:`\theta`)."""
        return sympy.hessian(self.log_partition, self.theta)

    def derivative(self, *indices: int) -> sympy.Expr:
        r""":math:`\partial_{i_1}\cdots\partial_{i_k}\psi` in the ``theta`` symbols (cached)."""
        key = tuple(sorted(indices))
        cache = self.__dict__.setdefault("_deriv_cache", {})
        if key not in cache:
            if not key:
                cache[key] = self.log_partition
            else:
                cache[key] = sympy.diff(self.derivative(*key[:-1]), self.theta[key[-1]])
        return cache[key]

    def mean(self, params: Mapping) -> tuple:
        r"""Mean parameter :math:`\eta = E[T(X)] = \nabla\psi(\theta)` of a member."""
        theta = self.to_natural(params)
        sub = dict(zip(self.theta, theta, strict=True))
        return tuple(_tidy(g.subs(sub, simultaneous=True)) for g in self.gradient)

    def fisher_information(self, params: Mapping | None = None) -> sympy.Matrix:
        r"""Fisher information :math:`\nabla^2\psi(\theta)` of the natural parameter.

        Without ``params`` the matrix is in the ``theta`` symbols; with a standard-parameter
        dict it is evaluated there. For the Fisher information of the standard parameters
        :math:`\xi` use :meth:`fisher_information_standard`.
        """
        if params is None:
            return self.hessian
        theta = self.to_natural(params)
        sub = dict(zip(self.theta, theta, strict=True))
        return self.hessian.subs(sub, simultaneous=True).applyfunc(_tidy)

    def fisher_information_standard(self, params: Mapping) -> sympy.Matrix:
        r"""Fisher information of the standard parameters: :math:`J^\top \nabla^2\psi\, J`
        with :math:`J = \partial\theta/\partial\xi` (scalar parameters only)."""
        syms = [sympy.Dummy(k) for k in self.params]
        sym_params = dict(zip(self.params, syms, strict=True))
        theta = sympy.Matrix(self.to_natural_fn(sym_params) if self.to_natural_fn
                             else syms)
        jac = theta.jacobian(syms)
        sub = dict(zip(self.theta, theta, strict=True))
        info = jac.T * self.hessian.subs(sub, simultaneous=True) * jac
        values = {s: _as_expr(params[k], k) for s, k in zip(syms, self.params, strict=True)}
        return info.subs(values).applyfunc(_tidy)

    @cached_property
    def eta(self) -> tuple:
        """Mean-parameter symbols ``eta1, ..., etap`` used by :attr:`inverse_mean_map`."""
        return tuple(sympy.Symbol(f"eta{i + 1}", real=True) for i in range(self.dim))

    @cached_property
    def inverse_mean_map(self) -> tuple | None:
        r""":math:`\theta(\eta)`, the solution of :math:`\nabla\psi(\theta)=\eta` in the
        :attr:`eta` symbols, or ``None`` when sympy finds no unique closed form (e.g. the
        digamma equations of the Gamma and Beta families)."""
        if self.inverse_mean_fn is False:
            return None
        if self.inverse_mean_fn is not None:
            theta = tuple(sympy.sympify(t) for t in self.inverse_mean_fn(self.eta))
            if len(theta) != self.dim:
                raise ValueError(f"{self.name}: inverse_mean gave {len(theta)} values, "
                                 f"expected {self.dim}")
            return theta
        eqs = [sympy.Eq(g, e) for g, e in zip(self.gradient, self.eta, strict=True)]
        try:
            sols = sympy.solve(eqs, list(self.theta), dict=True)
        except (NotImplementedError, ValueError, TypeError):
            return None
        sols = [s for s in sols if all(t in s for t in self.theta)]
        if len(sols) != 1:
            return None
        sol = sols[0]
        return tuple(sympy.simplify(sol[t]) for t in self.theta)

    def natural_from_mean(self, eta: Sequence) -> tuple:
        r"""Natural parameter with mean ``eta`` (closed form; raises :class:`NoClosedForm`)."""
        inv = self.inverse_mean_map
        if inv is None:
            raise NoClosedForm(f"{self.name}: the mean map has no closed-form inverse")
        sub = dict(zip(self.eta, (sympy.sympify(e) for e in eta), strict=True))
        # xreplace: the same simultaneous substitution of symbols as subs(simultaneous=True),
        # without subs' pattern matching (a third of a second per log(p1/(1 - p1 - ...)))
        return tuple(_tidy(t.xreplace(sub)) for t in inv)

    # ------------------------------------------------------------------ densities
    def log_density(self, params: Mapping) -> sympy.Expr:
        r""":math:`\log p(x) = \log h(x) + \theta\cdot T(x) - \psi(\theta)` in
        :attr:`variables`."""
        theta = self.to_natural(params)
        return (
            self.log_base_measure
            + sum(t * s for t, s in zip(theta, self.statistic, strict=True))
            - self.psi(theta)
        )

    # ------------------------------------------------------------------ divergences
    def _pair(self, params_p, params_q):
        return self.to_natural(params_p), self.to_natural(params_q)

    def kl(self, params_p: Mapping, params_q: Mapping) -> sympy.Expr:
        r"""KL(P‖Q) as the Bregman divergence of :math:`\psi`.

        .. math:: \mathrm{KL}(P\|Q) = \psi(\theta_q) - \psi(\theta_p)
                  - \nabla\psi(\theta_p)\cdot(\theta_q - \theta_p)

        P (``params_p``) is the first argument. Both are standard-parameter dicts.
        """
        tp, tq = self._pair(params_p, params_q)
        sub = dict(zip(self.theta, tp, strict=True))
        grad = [g.subs(sub, simultaneous=True) for g in self.gradient]
        val = self.psi(tq) - self.psi(tp) - sum(
            g * (b - a) for g, a, b in zip(grad, tp, tq, strict=True)
        )
        return _tidy(val)

    def _log_mixture(self, a: sympy.Expr, tp, tq) -> tuple:
        r""":math:`\log M(a)` and the condition :math:`\theta_a\in\Theta`."""
        ta = tuple(a * x + (1 - a) * y for x, y in zip(tp, tq, strict=True))
        log_m = self.psi(ta) - a * self.psi(tp) - (1 - a) * self.psi(tq)
        return log_m, self.in_domain(ta)

    def _maybe_infinite(self, value, cond, a=None):
        if a is not None:
            a = sympy.sympify(a)
            if a.is_number and 0 <= a <= 1:
                return value
        cond = sympy.simplify(cond) if cond not in (sympy.true, sympy.false) else cond
        if cond is sympy.true:
            return value
        if cond is sympy.false:
            return sympy.oo
        return sympy.Piecewise((value, cond), (sympy.oo, True))

    def renyi(self, params_p: Mapping, params_q: Mapping, *, alpha) -> sympy.Expr:
        r"""Rényi divergence of order α, :math:`R_\alpha(P\|Q) = \frac{1}{\alpha-1}\log
        \int p^\alpha q^{1-\alpha}`.

        .. math:: R_\alpha = \frac{\psi(\alpha\theta_p + (1-\alpha)\theta_q)
                  - \alpha\psi(\theta_p) - (1-\alpha)\psi(\theta_q)}{\alpha - 1}

        finite when :math:`\alpha\theta_p+(1-\alpha)\theta_q\in\Theta` (always for
        0 < α < 1), +oo otherwise (returned as a Piecewise for symbolic parameters).
        At α = 1 it is :meth:`kl` (the limit).
        """
        alpha = _as_expr(alpha, "alpha")
        if alpha.is_number and not alpha.is_positive:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if alpha == 1:
            return self.kl(params_p, params_q)
        tp, tq = self._pair(params_p, params_q)
        log_m, cond = self._log_mixture(alpha, tp, tq)
        return self._maybe_infinite(_tidy(log_m / (alpha - 1)), cond, alpha)

    def bhattacharyya(self, params_p: Mapping, params_q: Mapping) -> sympy.Expr:
        r"""Bhattacharyya distance :math:`D_B = -\log\mathrm{BC}`,
        :math:`\mathrm{BC} = \int\sqrt{pq}`:
        :math:`D_B = \tfrac12\psi(\theta_p) + \tfrac12\psi(\theta_q)
        - \psi(\tfrac{\theta_p+\theta_q}{2})` (symmetric)."""
        tp, tq = self._pair(params_p, params_q)
        log_m, _ = self._log_mixture(sympy.Rational(1, 2), tp, tq)
        return _tidy(-log_m)

    def hellinger(self, params_p: Mapping, params_q: Mapping) -> sympy.Expr:
        r"""Squared Hellinger distance :math:`H^2 = \int(\sqrt p-\sqrt q)^2 = 2(1-\mathrm{BC})`.

        This is the f-divergence of ``theory.fdiv``'s ``hellinger`` generator
        :math:`(\sqrt u-1)^2`; it lies in [0, 2].
        """
        if _has_float(params_p) or _has_float(params_q):
            params_p, params_q = _as_floats(params_p), _as_floats(params_q)
        return 2 * (1 - sympy.exp(-self.bhattacharyya(params_p, params_q)))

    def f_divergence(self, fdiv_obj, params_p: Mapping, params_q: Mapping) -> sympy.Expr:
        r""":math:`D_f(P\|Q) = E_Q[f(p/q)]` in closed form.

        ``fdiv_obj`` is a ``theory.fdiv.FDivergence`` (its ``f`` is used) or a sympy
        expression of :data:`theory.u`. The generator is expanded into terms
        :math:`c\,u^a(\log u)^m` (c, a free of u, m a non-negative integer); each
        contributes :math:`c\,\partial_a^m M(a)` with
        :math:`M(a)=\exp(\psi(\theta_a) - a\psi(\theta_p) - (1-a)\psi(\theta_q))`. A term
        with :math:`\theta_a\notin\Theta` makes the divergence +oo.

        Raises
        ------
        NoClosedForm
            when the generator has another kind of term (tv's :math:`|u-1|`, the
            :math:`\log(\beta u+1-\beta)` of js, le_cam, softened_rkl).
        """
        f = getattr(fdiv_obj, "f", fdiv_obj)
        label = getattr(fdiv_obj, "name", None) or str(f)
        f = sympy.sympify(f)
        if _has_float(params_p) or _has_float(params_q):
            # with float parameters the exact binary rationals make sympy expand huge
            # powers (issue 14 item 5): evaluate the same closed form in Floats (mpmath)
            exact = self.f_divergence(fdiv_obj, _as_floats(params_p), _as_floats(params_q))
            return exact if exact.free_symbols or exact is sympy.oo else sympy.N(exact, 17)
        terms = _power_log_terms(f)
        if terms is None:
            raise NoClosedForm(
                f"f-divergence {label!r}: generator {f} is not a sum of c*u**a*log(u)**m "
                "terms, so no closed form between exponential-family members is derived"
            )
        tp, tq = self._pair(params_p, params_q)
        a_sym = sympy.Dummy("a")
        log_m, _ = self._log_mixture(a_sym, tp, tq)
        m_of_a = sympy.exp(log_m)
        total = sympy.Integer(0)
        conds = []
        for coeff, a, m in terms:
            if m == 0:
                val = m_of_a.subs(a_sym, a)
            else:
                val = sympy.diff(m_of_a, a_sym, m).subs(a_sym, a)
            if a in (0, 1) and m == 0:
                val = sympy.Integer(1)
            total += coeff * val
            a = sympy.sympify(a)
            if not (a.is_number and 0 <= a <= 1):
                ta = tuple(a * x + (1 - a) * y for x, y in zip(tp, tq, strict=True))
                conds.append(self.in_domain(ta))
        total = _tidy(total)
        cond = sympy.And(*conds) if conds else sympy.true
        return self._maybe_infinite(total, cond)


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """Light simplification that keeps closed forms readable.

    Numeric expressions are returned as sympy built them (``simplify`` on logs of large
    rationals can take minutes); symbolic ones are simplified when they are small.
    """
    if not expr.free_symbols:
        return expr
    if sympy.count_ops(expr) > 400:
        return expr
    try:
        return sympy.simplify(expr)
    except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - sympy bug
        return expr


def _power_log_terms(f: sympy.Expr) -> list | None:
    """Decompose f(u) into [(c, a, m)] with f = Σ c u^a log(u)^m, or None."""
    expanded = sympy.expand(sympy.expand_log(sympy.sympify(f), force=True))
    out: dict = {}
    for term in sympy.Add.make_args(expanded):
        coeff, dep = term.as_independent(u, as_Add=False)
        a, m = sympy.Integer(0), 0
        for factor in sympy.Mul.make_args(dep):
            if factor == 1:
                continue
            if factor == u:
                a += 1
            elif factor.is_Pow and factor.base == u and not factor.exp.has(u):
                a += factor.exp
            elif factor == sympy.log(u):
                m += 1
            elif (
                factor.is_Pow
                and factor.base == sympy.log(u)
                and factor.exp.is_Integer
                and factor.exp > 0
            ):
                m += int(factor.exp)
            else:
                return None
        key = (sympy.simplify(a), m)
        out[key] = out.get(key, 0) + coeff
    return [(c, a, m) for (a, m), c in out.items() if c != 0]


# ====================================================================== catalog of members
def _positive(name: str, value, family: str) -> None:
    vals = value if isinstance(value, tuple) else (value,)
    for v in vals:
        if v.is_number and not (v.is_real and v > 0):
            raise ValueError(f"{family}: {name} must be positive, got {v}")
        if v.is_positive is False:
            raise ValueError(f"{family}: {name} must be positive, got {v}")


def _real(name: str, value, family: str) -> None:
    vals = value if isinstance(value, tuple) else (value,)
    for v in vals:
        if v.is_number and not v.is_real:
            raise ValueError(f"{family}: {name} must be real, got {v}")


def _probability(name: str, value, family: str) -> None:
    if value.is_number and not (value.is_real and 0 < value < 1):
        raise ValueError(f"{family}: {name} must lie in (0, 1), got {value}")


def _x() -> sympy.Symbol:
    return sympy.Symbol("x", real=True)


def _th(i: int | None = None) -> sympy.Symbol:
    return sympy.Symbol("theta" if i is None else f"theta{i}", real=True)


def _bernoulli() -> ExponentialFamily:
    x, th = _x(), _th()
    return ExponentialFamily(
        "bernoulli", theta=[th], statistic=[x], variables=[x],
        log_partition=sympy.log(1 + sympy.exp(th)), log_base_measure=sympy.Integer(0),
        support=[sympy.FiniteSet(0, 1)], discrete=True, params=["probs"],
        to_natural=lambda p: [sympy.log(p["probs"] / (1 - p["probs"]))],
        from_natural=lambda t: {"probs": 1 / (1 + sympy.exp(-t[0]))},
        validate=lambda p: _probability("probs", p["probs"], "bernoulli"),
    )


def _binomial(total_count) -> ExponentialFamily:
    n = _as_expr(total_count, "binomial total_count")
    if not (n.is_integer and n.is_positive):
        raise ValueError(f"binomial: total_count must be a positive integer, got {n}")
    x, th = _x(), _th()
    return ExponentialFamily(
        "binomial", theta=[th], statistic=[x], variables=[x],
        log_partition=n * sympy.log(1 + sympy.exp(th)),
        log_base_measure=sympy.log(sympy.binomial(n, x)),
        support=[sympy.Range(0, n + 1)], discrete=True, params=["probs"],
        to_natural=lambda p: [sympy.log(p["probs"] / (1 - p["probs"]))],
        from_natural=lambda t: {"probs": 1 / (1 + sympy.exp(-t[0]))},
        validate=lambda p: _probability("probs", p["probs"], "binomial"),
        fixed={"total_count": n},
    )


def _categorical(num_classes) -> ExponentialFamily:
    k = _as_expr(num_classes, "categorical num_classes")
    if not (k.is_Integer and k >= 2):
        raise ValueError(f"categorical: num_classes must be an integer >= 2, got {k}")
    k = int(k)
    x = _x()
    ths = [_th(i + 1) for i in range(k - 1)]
    # T_j(x) = [x == j-1] for j = 1..k-1; class k-1 is the reference class
    stats = [sympy.Piecewise((1, sympy.Eq(x, j)), (0, True)) for j in range(k - 1)]

    def to_nat(p):
        probs = p["probs"]
        if not isinstance(probs, tuple) or len(probs) != k:
            raise ValueError(f"categorical: probs must be a sequence of {k} probabilities")
        return [sympy.log(probs[j] / probs[k - 1]) for j in range(k - 1)]

    def from_nat(t):
        z = 1 + sum(sympy.exp(v) for v in t)
        return {"probs": tuple([sympy.exp(v) / z for v in t] + [1 / z])}

    def validate(p):
        probs = p["probs"]
        if not isinstance(probs, tuple) or len(probs) != k:
            raise ValueError(f"categorical: probs must be a sequence of {k} probabilities")
        for v in probs:
            _probability("probs entry", v, "categorical")
        total = sympy.simplify(sum(probs) - 1)
        # floats (taken as their exact binary values) may miss 1 by a few ulps
        if total.is_number and abs(total) > _SUM_ULPS * k * 2.0**-53:
            raise ValueError(f"categorical: probs must sum to 1, got sum {sum(probs)}")

    return ExponentialFamily(
        "categorical", theta=ths, statistic=stats, variables=[x],
        log_partition=sympy.log(1 + sum(sympy.exp(t) for t in ths)),
        log_base_measure=sympy.Integer(0), support=[sympy.Range(0, k)], discrete=True,
        params=["probs"], to_natural=to_nat, from_natural=from_nat, validate=validate,
        fixed={"num_classes": k},
        # eta_j = P(class j): theta_j = log(eta_j / eta_k), eta_k = 1 - sum(eta)
        inverse_mean=lambda eta: [sympy.log(e / (1 - sum(eta))) for e in eta],
    )


def _poisson() -> ExponentialFamily:
    x, th = _x(), _th()
    return ExponentialFamily(
        "poisson", theta=[th], statistic=[x], variables=[x],
        log_partition=sympy.exp(th), log_base_measure=-sympy.log(sympy.factorial(x)),
        support=[sympy.S.Naturals0], discrete=True, params=["rate"],
        to_natural=lambda p: [sympy.log(p["rate"])],
        from_natural=lambda t: {"rate": sympy.exp(t[0])},
        validate=lambda p: _positive("rate", p["rate"], "poisson"),
    )


def _geometric() -> ExponentialFamily:
    # torch.distributions.Geometric: number of failures before the first success,
    # P(x) = (1 - probs)**x * probs, x = 0, 1, ...
    x, th = _x(), _th()
    return ExponentialFamily(
        "geometric", theta=[th], statistic=[x], variables=[x],
        log_partition=-sympy.log(1 - sympy.exp(th)), log_base_measure=sympy.Integer(0),
        support=[sympy.S.Naturals0], discrete=True, natural_domain=th < 0,
        params=["probs"],
        to_natural=lambda p: [sympy.log(1 - p["probs"])],
        from_natural=lambda t: {"probs": 1 - sympy.exp(t[0])},
        validate=lambda p: _probability("probs", p["probs"], "geometric"),
    )


def _exponential() -> ExponentialFamily:
    x, th = _x(), _th()
    return ExponentialFamily(
        "exponential", theta=[th], statistic=[x], variables=[x],
        log_partition=-sympy.log(-th), log_base_measure=sympy.Integer(0),
        support=[sympy.Interval.open(0, sympy.oo)], discrete=False, natural_domain=th < 0,
        params=["rate"],
        to_natural=lambda p: [-p["rate"]],
        from_natural=lambda t: {"rate": -t[0]},
        validate=lambda p: _positive("rate", p["rate"], "exponential"),
    )


def _gamma() -> ExponentialFamily:
    x, t1, t2 = _x(), _th(1), _th(2)
    return ExponentialFamily(
        "gamma", theta=[t1, t2], statistic=[sympy.log(x), x], variables=[x],
        log_partition=sympy.loggamma(t1) - t1 * sympy.log(-t2),
        log_base_measure=-sympy.log(x), support=[sympy.Interval.open(0, sympy.oo)],
        discrete=False, natural_domain=sympy.And(t1 > 0, t2 < 0),
        params=["concentration", "rate"],
        to_natural=lambda p: [p["concentration"], -p["rate"]],
        from_natural=lambda t: {"concentration": t[0], "rate": -t[1]},
        validate=lambda p: (_positive("concentration", p["concentration"], "gamma"),
                            _positive("rate", p["rate"], "gamma")),
        inverse_mean=False,  # digamma(t1) - log(-t2) = eta1 has no closed-form solution
    )


def _beta() -> ExponentialFamily:
    x, t1, t2 = _x(), _th(1), _th(2)
    return ExponentialFamily(
        "beta", theta=[t1, t2], statistic=[sympy.log(x), sympy.log(1 - x)], variables=[x],
        log_partition=sympy.loggamma(t1) + sympy.loggamma(t2) - sympy.loggamma(t1 + t2),
        log_base_measure=-sympy.log(x) - sympy.log(1 - x),
        support=[sympy.Interval.open(0, 1)], discrete=False,
        natural_domain=sympy.And(t1 > 0, t2 > 0),
        params=["concentration1", "concentration0"],
        to_natural=lambda p: [p["concentration1"], p["concentration0"]],
        from_natural=lambda t: {"concentration1": t[0], "concentration0": t[1]},
        validate=lambda p: (_positive("concentration1", p["concentration1"], "beta"),
                            _positive("concentration0", p["concentration0"], "beta")),
        inverse_mean=False,  # digamma equations: no closed-form solution
    )


def _normal_known_variance(scale=1) -> ExponentialFamily:
    s = _as_expr(scale, "normal_known_variance scale")
    _positive("scale", s, "normal_known_variance")
    x, th = _x(), _th()
    return ExponentialFamily(
        "normal_known_variance", theta=[th], statistic=[x], variables=[x],
        log_partition=s**2 * th**2 / 2,
        log_base_measure=-x**2 / (2 * s**2) - sympy.log(2 * sympy.pi * s**2) / 2,
        support=[sympy.S.Reals], discrete=False, params=["loc"],
        to_natural=lambda p: [p["loc"] / s**2],
        from_natural=lambda t: {"loc": t[0] * s**2},
        validate=lambda p: _real("loc", p["loc"], "normal_known_variance"),
        fixed={"scale": s},
    )


def _normal() -> ExponentialFamily:
    x, t1, t2 = _x(), _th(1), _th(2)
    return ExponentialFamily(
        "normal", theta=[t1, t2], statistic=[x, x**2], variables=[x],
        log_partition=-t1**2 / (4 * t2) + sympy.log(-sympy.pi / t2) / 2,
        log_base_measure=sympy.Integer(0), support=[sympy.S.Reals], discrete=False,
        natural_domain=t2 < 0, params=["loc", "scale"],
        to_natural=lambda p: [p["loc"] / p["scale"]**2, -1 / (2 * p["scale"]**2)],
        from_natural=lambda t: {"loc": -t[0] / (2 * t[1]), "scale": sympy.sqrt(-1 / (2 * t[1]))},
        validate=lambda p: (_real("loc", p["loc"], "normal"),
                            _positive("scale", p["scale"], "normal")),
    )


def _diagonal_normal(dim) -> ExponentialFamily | SymbolicDiagonalNormal:
    d = _as_expr(dim, "diagonal_normal dim")
    if isinstance(d, sympy.Symbol):
        if not (d.is_integer and d.is_positive):
            raise ValueError("diagonal_normal: a symbolic dim must be a positive integer Symbol")
        return SymbolicDiagonalNormal(d)
    if not (d.is_Integer and d >= 1):
        raise ValueError(f"diagonal_normal: dim must be a positive integer, got {d}")
    d = int(d)
    xs = [sympy.Symbol(f"x{i + 1}", real=True) for i in range(d)]
    t1 = [sympy.Symbol(f"theta{i + 1}", real=True) for i in range(d)]
    t2 = [sympy.Symbol(f"theta{d + i + 1}", real=True) for i in range(d)]
    psi = sum(-a**2 / (4 * b) + sympy.log(-sympy.pi / b) / 2 for a, b in zip(t1, t2, strict=True))

    def vec(p, key):
        v = p[key]
        if not isinstance(v, tuple) or len(v) != d:
            raise ValueError(f"diagonal_normal: {key} must be a sequence of length {d}")
        return v

    def to_nat(p):
        loc, scale = vec(p, "loc"), vec(p, "scale")
        return [m / s**2 for m, s in zip(loc, scale, strict=True)] + [
            -1 / (2 * s**2) for s in scale
        ]

    def from_nat(t):
        a, b = t[:d], t[d:]
        return {"loc": tuple(-x / (2 * y) for x, y in zip(a, b, strict=True)),
                "scale": tuple(sympy.sqrt(-1 / (2 * y)) for y in b)}

    def validate(p):
        _real("loc", vec(p, "loc"), "diagonal_normal")
        _positive("scale", vec(p, "scale"), "diagonal_normal")

    return ExponentialFamily(
        "diagonal_normal", theta=t1 + t2, statistic=xs + [v**2 for v in xs], variables=xs,
        log_partition=psi, log_base_measure=sympy.Integer(0),
        support=[sympy.S.Reals] * d, discrete=False,
        natural_domain=sympy.And(*[b < 0 for b in t2]), params=["loc", "scale"],
        to_natural=to_nat, from_natural=from_nat, validate=validate, fixed={"dim": d},
    )


class SymbolicDiagonalNormal:
    r"""Diagonal-covariance normal family of symbolic dimension d.

    :math:`\psi` of a diagonal normal is the sum over coordinates of the univariate normal
    log-partition, so every closed form between two members is the sum over
    :math:`i = 1..d` of the univariate one (KL, Rényi, Bhattacharyya) — derived from the
    ``normal`` family's :math:`\psi` and wrapped in a ``sympy.Sum``; squared Hellinger is
    :math:`2(1 - e^{-D_B})`. Parameters are dicts with ``loc`` and ``scale`` given as
    ``sympy.IndexedBase`` objects (indexed from 1 to d).

    >>> import sympy
    >>> d = sympy.Symbol("d", integer=True, positive=True)
    >>> fam = get("diagonal_normal", dim=d)
    >>> m, s, m2, s2 = (sympy.IndexedBase(n) for n in ("m", "s", "m2", "s2"))
    >>> kl = fam.kl({"loc": m, "scale": s}, {"loc": m2, "scale": s2})
    >>> isinstance(kl, sympy.Sum)
    True
    """

    def __init__(self, dim: sympy.Symbol):
        self.dim = dim
        self.index = sympy.Symbol("i", integer=True, positive=True)
        self.name = "diagonal_normal"
        self.fixed = {"dim": dim}
        self._normal = _normal()

    def __repr__(self) -> str:
        return f"SymbolicDiagonalNormal(dim={self.dim})"

    def _coord(self, params: Mapping) -> dict:
        if not isinstance(params, Mapping) or set(params) != {"loc", "scale"}:
            raise ValueError("diagonal_normal: parameters must be a dict with loc and scale")
        out = {}
        for key in ("loc", "scale"):
            v = params[key]
            if not isinstance(v, sympy.IndexedBase):
                raise TypeError(
                    f"diagonal_normal with symbolic dim: {key} must be a sympy.IndexedBase"
                )
            out[key] = v[self.index]
        return out

    def _sum(self, expr) -> sympy.Sum:
        return sympy.Sum(expr, (self.index, 1, self.dim))

    def kl(self, params_p: Mapping, params_q: Mapping) -> sympy.Sum:
        """KL(P‖Q) = Σ_i KL of the coordinates (Bregman divergence of ψ)."""
        return self._sum(self._normal.kl(self._coord(params_p), self._coord(params_q)))

    def renyi(self, params_p: Mapping, params_q: Mapping, *, alpha) -> sympy.Expr:
        """Rényi-α = Σ_i of the coordinates' Rényi-α (a Piecewise where it may be +oo)."""
        return self._sum(
            self._normal.renyi(self._coord(params_p), self._coord(params_q), alpha=alpha)
        )

    def bhattacharyya(self, params_p: Mapping, params_q: Mapping) -> sympy.Sum:
        """Bhattacharyya distance = Σ_i of the coordinates' distances."""
        return self._sum(
            self._normal.bhattacharyya(self._coord(params_p), self._coord(params_q))
        )

    def hellinger(self, params_p: Mapping, params_q: Mapping) -> sympy.Expr:
        """Squared Hellinger 2(1 − BC) with BC = exp(−D_B)."""
        if _has_float(params_p) or _has_float(params_q):
            params_p, params_q = _as_floats(params_p), _as_floats(params_q)
        return 2 * (1 - sympy.exp(-self.bhattacharyya(params_p, params_q)))


_REGISTRY: dict[str, tuple[Callable, dict]] = {
    "bernoulli": (_bernoulli, {}),
    "binomial": (_binomial, {"total_count": None}),
    "categorical": (_categorical, {"num_classes": None}),
    "poisson": (_poisson, {}),
    "geometric": (_geometric, {}),
    "exponential": (_exponential, {}),
    "gamma": (_gamma, {}),
    "beta": (_beta, {}),
    "normal_known_variance": (_normal_known_variance, {"scale": 1}),
    "normal": (_normal, {}),
    "diagonal_normal": (_diagonal_normal, {"dim": None}),
}


def names() -> list[str]:
    """Names of the built-in families, for :func:`get`."""
    return list(_REGISTRY)


def get(name: str, **fixed) -> ExponentialFamily | SymbolicDiagonalNormal:
    """A built-in family by name, with its fixed parameters.

    Fixed parameters: ``binomial`` needs ``total_count``, ``categorical`` needs
    ``num_classes``, ``diagonal_normal`` needs ``dim`` (an integer, or a positive integer
    Symbol for a :class:`SymbolicDiagonalNormal` with closed forms as sums over coordinates),
    ``normal_known_variance`` takes ``scale`` (default 1).

    >>> get("binomial", total_count=5)
    ExponentialFamily('binomial', p=1, total_count=5)
    >>> get("gama")
    Traceback (most recent call last):
    ...
    ValueError: unknown exponential family 'gama'; did you mean 'gamma'? ...
    """
    if not isinstance(name, str):
        raise TypeError(f"family name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown exponential family {name!r}{hint} (known: {', '.join(_REGISTRY)})"
        )
    builder, defaults = _REGISTRY[key]
    unknown = set(fixed) - set(defaults)
    if unknown:
        raise ValueError(
            f"{key}: unknown fixed parameter(s) {sorted(unknown)}; "
            f"accepted: {sorted(defaults) or 'none'}"
        )
    kwargs = {**defaults, **fixed}
    missing = [k for k, v in kwargs.items() if v is None]
    if missing:
        raise ValueError(f"{key}: the fixed parameter(s) {missing} must be given, "
                         f"e.g. get({key!r}, {missing[0]}=...)")
    return builder(**kwargs)
