"""``divkit derive risk``: the MLE risk expansion of theory.asymptotics from the command line.

Examples::

    divkit derive risk --family exponential --truth "Gamma(2, 1/2)"
    divkit derive risk --family normal --truth "Uniform(0, 1)" --json
    divkit derive risk --family binomial:total_count=10 --truth "Binomial(10, 1/3)"
    divkit derive risk --family poisson                       # well specified, symbolic

``--family`` is a name of theory.expfam, optionally followed by ``:key=value,...`` for the
fixed parameters (``binomial:total_count=10``, ``categorical:num_classes=3``,
``diagonal_normal:dim=2``, ``normal_known_variance:scale=2``).

``--truth`` is a distribution constructor with sympy.stats' parameter conventions, parsed by
the whitelist parser (theory.parsing; never sympify): Gamma(shape, scale), Exponential(rate),
Poisson(rate), Normal(mean, std), Bernoulli(p), Binomial(n, p), Beta(a, b),
Geometric(p) (trials, support 1, 2, ...), NegativeBinomial(r, p), Uniform(a, b),
LogNormal(mean, std), ChiSquared(k), Erlang(k, rate), Weibull(scale, shape),
Laplace(mean, b), Cauchy(x0, gamma), StudentT(nu). Parameters may use the symbols
k, a, b, r, lam, mu, sigma (positive, mu real) and the default functions (sqrt, exp, ...).
Without ``--truth`` the truth is a symbolic member of the family (well specified).
"""

from __future__ import annotations

import argparse
import json
import sys

import sympy
import sympy.stats as sst

from proofs_check import _cli_budget
from theory import asymptotics, expfam
from theory.parsing import DEFAULT_FUNCTIONS, ParseError, parse_expression, parse_number

__all__ = ["add_arguments", "run", "parse_truth", "parse_family", "TABLE_N"]

#: Sample sizes of the printed table.
TABLE_N = (10, 30, 100, 300, 1000, 3000)


def _constructor(name: str, ctor, nargs: int, usage: str):
    def build(*args):
        if len(args) != nargs:
            raise ParseError(f"{name} takes {nargs} argument(s) ({usage}), got {len(args)}")
        return ctor("X", *args)

    return build


#: Whitelisted distribution constructors: name -> callable building a sympy.stats symbol.
DISTRIBUTIONS = {
    "Gamma": _constructor("Gamma", sst.Gamma, 2, "shape, scale"),
    "Exponential": _constructor("Exponential", sst.Exponential, 1, "rate"),
    "Poisson": _constructor("Poisson", sst.Poisson, 1, "rate"),
    "Normal": _constructor("Normal", sst.Normal, 2, "mean, std"),
    "Bernoulli": _constructor("Bernoulli", sst.Bernoulli, 1, "p"),
    "Binomial": _constructor("Binomial", sst.Binomial, 2, "n, p"),
    "Beta": _constructor("Beta", sst.Beta, 2, "a, b"),
    "Geometric": _constructor("Geometric", sst.Geometric, 1, "p"),
    "NegativeBinomial": _constructor("NegativeBinomial", sst.NegativeBinomial, 2, "r, p"),
    "Uniform": _constructor("Uniform", sst.Uniform, 2, "a, b"),
    "LogNormal": _constructor("LogNormal", sst.LogNormal, 2, "mean, std of log"),
    "ChiSquared": _constructor("ChiSquared", sst.ChiSquared, 1, "k"),
    "Erlang": _constructor("Erlang", sst.Erlang, 2, "k, rate"),
    "Weibull": _constructor("Weibull", sst.Weibull, 2, "scale, shape"),
    "Laplace": _constructor("Laplace", sst.Laplace, 2, "mean, b"),
    "Cauchy": _constructor("Cauchy", sst.Cauchy, 2, "x0, gamma"),
    "StudentT": _constructor("StudentT", sst.StudentT, 1, "nu"),
}

_SYMBOLS = {
    "k": sympy.Symbol("k", positive=True),
    "a": sympy.Symbol("a", positive=True),
    "b": sympy.Symbol("b", positive=True),
    "r": sympy.Symbol("r", positive=True),
    "lam": sympy.Symbol("lam", positive=True),
    "mu": sympy.Symbol("mu", real=True),
    "sigma": sympy.Symbol("sigma", positive=True),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``divkit derive risk`` (when used as its own subcommand)."""
    parser.add_argument("--family", required=True, help="family name[:key=value,...]")
    parser.add_argument("--truth", help="true distribution, e.g. 'Gamma(2, 1/2)'")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--latex", action="store_true", help="print LaTeX")


def parse_truth(text: str):
    """A sympy.stats random symbol from a whitelisted constructor call."""
    functions = {**DEFAULT_FUNCTIONS, **DISTRIBUTIONS}
    value = parse_expression(text, symbols=_SYMBOLS, functions=functions, constants={})
    if not isinstance(value, sst.rv.RandomSymbol):
        raise ParseError(
            f"--truth must be one distribution, e.g. 'Gamma(2, 1/2)'; got {text!r} "
            f"(constructors: {', '.join(DISTRIBUTIONS)})"
        )
    return value


def parse_family(text: str) -> expfam.ExponentialFamily:
    """``name`` or ``name:key=value,...`` to a family (values through parse_number)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--family needs a name, one of {', '.join(expfam.names())}")
    name, _, rest = text.partition(":")
    fixed = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, val = item.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier():
                raise ValueError(f"--family fixed parameters are key=value, got {item!r}")
            fixed[key] = parse_number(val.strip())
    return expfam.get(name.strip(), **fixed)


def _symbolic_member(fam: expfam.ExponentialFamily) -> dict:
    """Standard parameters of a generic member, as positive (loc: real) symbols."""
    out = {}
    dim = fam.fixed.get("dim")
    k = fam.fixed.get("num_classes")
    for name in fam.params:
        if fam.name == "categorical":
            ps = [sympy.Symbol(f"p{i + 1}", positive=True) for i in range(k - 1)]
            out[name] = tuple(ps) + (1 - sum(ps),)
        elif dim is not None:
            assume = {"real": True} if name == "loc" else {"positive": True}
            out[name] = tuple(sympy.Symbol(f"{name}{i + 1}", **assume) for i in range(dim))
        else:
            assume = {"real": True} if name == "loc" else {"positive": True}
            out[name] = sympy.Symbol(name, **assume)
    return out


def _num(expr):
    """A float for numeric expressions, else None."""
    try:
        if expr is not None and expr.is_number:
            return float(sympy.N(expr, 30))
    except (TypeError, ValueError):
        pass
    return None


def _show(expr, digits: int = 12) -> str:
    if expr is None:
        return "-"
    if expr.is_number and not expr.is_Integer:
        return str(sympy.N(expr, digits))
    return str(expr)


def _compute(args):
    fam = parse_family(args.family)
    if getattr(args, "truth", None):
        truth = parse_truth(args.truth)
        label = args.truth
    else:
        truth = _symbolic_member(fam)
        label = f"{fam.name} member (well specified)"
    try:
        risk = asymptotics.mle_risk(fam, truth=truth)
    except RecursionError:
        raise ValueError(f"--truth {label!r}: sympy recursed too deeply on these parameters "
                         "(too large or too small for the symbolic computation); try values "
                         "of moderate size") from None
    return fam, risk, label


def run(args) -> int:
    """Print θ*, c1, c2 and a table of predicted risks; returns the exit status."""
    fam, risk, label = _compute(args)
    try:
        projection = risk.projection if risk.theta_star_equations is None else None
    except (TypeError, ValueError):
        projection = None
    rows = []
    for nv in TABLE_N:
        one = risk.evaluate(nv, terms=1)
        two = risk.evaluate(nv)
        rows.append((nv, one, two))
    if getattr(args, "json", False):
        doc = {
            "family": fam.name,
            "fixed": {k: str(v) for k, v in fam.fixed.items()},
            "p": risk.p,
            "truth": label,
            "theta_star": [str(t) for t in risk.theta_star],
            "theta_star_equations": (None if risk.theta_star_equations is None
                                     else [str(e) for e in risk.theta_star_equations]),
            "projection": (None if projection is None else
                           {k: (list(map(str, v)) if isinstance(v, tuple) else str(v))
                            for k, v in projection.items()}),
            "c1": str(risk.c1),
            "c2": str(risk.c2),
            "c1_value": _num(risk.c1),
            "c2_value": _num(risk.c2),
            "table": [
                {"n": nv, "one_term": str(one), "two_term": str(two),
                 "one_term_value": _num(one), "two_term_value": _num(two)}
                for nv, one, two in rows
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    if getattr(args, "latex", False):
        print(r"\theta^* = " + sympy.latex(sympy.Matrix(risk.theta_star).T))
        print(r"c_1 = " + sympy.latex(risk.c1))
        print(r"c_2 = " + sympy.latex(risk.c2))
        print(risk.latex())
        return 0
    from rich.table import Table

    console = _cli_budget.console(file=sys.stdout, width=120, soft_wrap=True, highlight=False)
    console.print(f"model: {fam!r}   truth: {label}", markup=False)
    console.print(f"theta* = {tuple(_show(t) for t in risk.theta_star)}", markup=False)
    if risk.theta_star_equations is not None:
        for eq in risk.theta_star_equations:
            console.print(f"  where {eq}", markup=False)
    if projection is not None:
        console.print(f"projection (standard parameters): {projection}", markup=False)
    console.print(f"c1 (n^-1) = {_show(risk.c1)}", markup=False)
    console.print(f"c2 (n^-2) = {_show(risk.c2)}", markup=False)
    table = Table(title="predicted E KL(g_theta* || g_theta_hat)")
    table.add_column("n", justify="right")
    table.add_column("c1/n", justify="right")
    table.add_column("c1/n + c2/n^2", justify="right")
    for nv, one, two in rows:
        table.add_row(str(nv), _show(one, 8), _show(two, 8))
    console.print(table)
    return 0
