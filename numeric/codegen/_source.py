"""Source assembly: rewrite → cse → printer → a labelled numpy module, C file or CUDA file."""

from __future__ import annotations

import hashlib
import keyword
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from numeric.codegen.printers import (
    DTYPES,
    CodegenError,
    CPrinter,
    CudaPrinter,
    NumpyPrinter,
)
from numeric.codegen.rewrite import DEFAULT_PASSES, Pass, resolve_passes, rewrite

__all__ = ["CODEGEN_VERSION", "TARGETS", "Program", "expression_hash", "program", "source"]

#: Bumped whenever generated code changes for the same input; part of every cache key.
CODEGEN_VERSION = "1"

#: Target name -> emitter ``emit(program, name, dtype) -> str`` (a printer's entry point);
#: :func:`register_target` adds one. ``source`` looks targets up here, nothing else.
TARGETS: dict = {}

_C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto
    if inline int long register restrict return short signed sizeof static struct switch
    typedef union unsigned void volatile while bool true false class new delete template
    this namespace using operator private public protected virtual friend""".split()
)
# Names the generated code itself uses (namespace, helpers, loop index, CUDA builtins).
_RESERVED = (
    frozenset("""xp math np n i out threadIdx blockIdx blockDim gridDim warpSize INFINITY NAN""".split())
    | _C_KEYWORDS
    | frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
)

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def normalize_exprs(expr, args) -> tuple[tuple[sympy.Expr, ...], tuple[sympy.Symbol, ...], bool]:
    single = not isinstance(expr, (tuple, list))
    exprs = (expr,) if single else tuple(expr)
    if not exprs:
        raise ValueError("expr: expected an expression or a non-empty tuple of expressions")
    try:
        exprs = tuple(sympy.sympify(e, strict=True) for e in exprs)
    except sympy.SympifyError as exc:
        raise TypeError(f"expr: expected sympy expressions, got {exc}") from None
    for e in exprs:
        if not isinstance(e, sympy.Expr):
            raise TypeError(f"expr: expected sympy expressions, got {type(e).__name__}: {e}")
    free = set().union(*(e.free_symbols for e in exprs))
    if args is None:
        args = tuple(sorted(free, key=lambda s: s.name))
    else:
        args = tuple(args)
        for a in args:
            if not isinstance(a, sympy.Symbol):
                raise TypeError(f"args: expected sympy Symbols, got {type(a).__name__}: {a}")
        if len(set(args)) != len(args):
            raise ValueError(f"args: repeated symbol in {args}")
        missing = free - set(args)
        if missing:
            names = ", ".join(sorted(s.name for s in missing))
            raise ValueError(f"args: the expression uses symbols not in args: {names}")
    if not args:
        raise ValueError("args: generated functions need at least one argument symbol")
    return exprs, args, single


def expression_hash(expr, args=None) -> str:
    """SHA-256 (hex) of the expressions and argument list, as ``srepr`` text.

    ``srepr`` includes the symbols' assumptions, so ``x`` real and ``x`` positive hash
    differently; the hash is stable across processes for the same sympy version.
    """
    exprs, args, single = normalize_exprs(expr, args)
    text = "|".join([sympy.srepr(exprs), sympy.srepr(args), "single" if single else "tuple"])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Program:
    """An expression tuple after rewrite and cse, ready to print.

    Attributes
    ----------
    exprs : tuple of sympy.Expr
        The expressions as given.
    rewritten : tuple of sympy.Expr
        After the rewrite passes.
    args : tuple of sympy.Symbol
    names : dict
        Symbol → identifier in the generated code.
    piecewise : tuple of (Symbol, Piecewise)
        Outermost ``Piecewise`` nodes, kept out of cse (their branches are evaluated only
        where they hold; hoisting a branch's subexpression would evaluate it everywhere).
    assignments : tuple of (Symbol, Expr)
        The cse temporaries in evaluation order.
    outputs : tuple of Expr
    single : bool
        Whether one expression (not a tuple) was given.
    hash : str
        :func:`expression_hash` of the input.
    passes : tuple of str
    """

    exprs: tuple
    rewritten: tuple
    args: tuple
    names: dict
    piecewise: tuple
    assignments: tuple
    outputs: tuple
    single: bool
    hash: str
    passes: tuple


def _identifier(symbol: sympy.Symbol, index: int, used: set[str]) -> str:
    name = symbol.name
    if not _IDENT.match(name) or name in _RESERVED or name in used or name.startswith("divkit"):
        name = f"arg{index}"
        while name in used:
            name += "_"
    used.add(name)
    return name


def _fresh(prefix: str, used: set[str]):
    i = 0
    while True:
        name = f"{prefix}{i}"
        i += 1
        if name not in used:
            used.add(name)
            yield sympy.Symbol(name)


def program(expr, args=None, *, passes: Sequence[Pass | str] | None = None) -> Program:
    """Rewrite, extract ``Piecewise`` nodes, and cse ``expr`` (or a tuple of expressions)."""
    exprs, args, single = normalize_exprs(expr, args)
    chosen = resolve_passes(passes)
    rewritten = tuple(rewrite(e, chosen) for e in exprs)
    used: set[str] = set()
    names = {a: _identifier(a, i, used) for i, a in enumerate(args)}
    # Symbols of args whose names were mangled are printed through `names`; cse and
    # placeholder symbols get fresh names that collide with nothing.
    pw_names = _fresh("pw", used)
    pieces: list[tuple[sympy.Symbol, sympy.Piecewise]] = []
    replacement: dict[sympy.Piecewise, sympy.Symbol] = {}

    def hide(e):
        if isinstance(e, sympy.Piecewise):
            if e not in replacement:
                sym = next(pw_names)
                replacement[e] = sym
                pieces.append((sym, e))
            return replacement[e]
        if not e.args or e.is_Atom:
            return e
        new_args = tuple(hide(a) for a in e.args)
        return e.func(*new_args) if new_args != e.args else e

    hidden = [hide(e) for e in rewritten]
    for sym, _ in pieces:
        names[sym] = sym.name
    assignments, outputs = sympy.cse(hidden, symbols=_fresh("t", used), order="canonical")
    for sym, _ in assignments:
        names[sym] = sym.name
    return Program(
        exprs=exprs,
        rewritten=rewritten,
        args=args,
        names=names,
        piecewise=tuple(pieces),
        assignments=tuple(assignments),
        outputs=tuple(outputs),
        single=single,
        hash=expression_hash(expr, args),
        passes=tuple(p.name for p in chosen),
    )


# --------------------------------------------------------------------------- headers


def _header(prog: Program, *, target: str, dtype: str, name: str, comment: str) -> str:
    lines = [
        "divkit numeric.codegen — generated code, do not edit (regenerate instead)",
        f"codegen version: {CODEGEN_VERSION}; sympy {sympy.__version__}",
        f"target: {target}; dtype: {dtype}; function: {name}",
        f"expression hash: sha256:{prog.hash}",
        f"arguments: {', '.join(prog.names[a] + ' = ' + a.name for a in prog.args)}",
        f"rewrite passes: {', '.join(prog.passes) if prog.passes else '(none)'}",
    ]
    for i, e in enumerate(prog.exprs):
        lines.append(f"out{i} = {sympy.sstr(e)}")
    for i, (e, r) in enumerate(zip(prog.exprs, prog.rewritten, strict=True)):
        if r != e:
            lines.append(f"out{i} (rewritten) = {sympy.sstr(r)}")
    return "".join(f"{comment} {line}".rstrip() + "\n" for line in lines)


def default_name(prog: Program, target: str, dtype: str) -> str:
    """``divkit_<hash[:12]>`` (with ``_f32``/``_f64`` for C and CUDA)."""
    base = f"divkit_{prog.hash[:12]}"
    if target == "numpy":
        return base
    return base + ("_f32" if dtype == "float32" else "_f64")


def check_name(name: str) -> str:
    if not _IDENT.match(name) or name in _RESERVED:
        raise ValueError(f"name: expected a C/Python identifier, got {name!r}")
    return name


# --------------------------------------------------------------------------- numpy

_NUMPY_HELPERS = {
    "_broadcast": '''
def _broadcast(xp, *arrays):
    """The arguments as arrays of one real floating dtype and one broadcast shape."""
    arrays = [xp.asarray(a) for a in arrays]
    dtype = xp.result_type(*arrays)
    if not xp.isdtype(dtype, "real floating"):
        dtype = xp.float64
    arrays = [a if a.dtype == dtype else xp.astype(a, dtype) for a in arrays]
    if len(arrays) > 1:
        arrays = xp.broadcast_arrays(*arrays)
    return tuple(arrays)
''',
    "_finish": '''
def _finish(xp, value, like):
    """``value`` as an array of ``like``'s dtype and shape (constants are broadcast)."""
    value = xp.asarray(value, dtype=like.dtype)
    if value.shape != like.shape:
        value = value + xp.zeros_like(like)
    return value
''',
    "Piecewise": '''
def _piecewise(xp, args, pieces):
    """Masked evaluation of ((condition, value), ...): condition k only where conditions
    0..k-1 were false, value k only where condition k holds; NaN where none holds."""
    like = args[0]
    flat = [xp.reshape(a, (-1,)) for a in args]
    out = xp.full(flat[0].shape, math.nan, dtype=like.dtype)
    todo = xp.arange(flat[0].shape[0])
    for condition, value in pieces:
        if todo.shape[0] == 0:
            break
        sub = [xp.take(a, todo, axis=0) for a in flat]
        hit = xp.asarray(condition(*sub))
        if hit.ndim == 0:
            hit = xp.broadcast_to(hit, todo.shape)
        where = todo[hit]
        if where.shape[0]:
            out[where] = value(*[s[hit] for s in sub])
        todo = todo[~hit]
    return xp.reshape(out, like.shape)
''',
    "xlogy": '''
def _xlogy(xp, x, y):
    """x*log(y), 0 where x == 0 (log is evaluated at 1 there, never at y)."""
    return x * xp.log(xp.where(x == 0, xp.ones_like(y), y))
''',
    "xlog1py": '''
def _xlog1py(xp, x, y):
    """x*log1p(y), 0 where x == 0 (log1p is evaluated at 0 there, never at y)."""
    return x * xp.log1p(xp.where(x == 0, xp.zeros_like(y), y))
''',
    "log1mexp": '''
def _log1mexp(xp, x):
    """log(1 - exp(x)) for x <= 0 (Maechler 2012), each branch only where it is used."""
    x = xp.asarray(x)
    out = xp.empty_like(x)
    near = x > -0.6931471805599453
    out[near] = xp.log(-xp.expm1(x[near]))
    far = ~near
    out[far] = xp.log1p(-xp.exp(x[far]))
    return out
''',
    "softplus": '''
def _softplus(xp, x):
    """log(1 + exp(x)) = logaddexp(0, x)."""
    return xp.logaddexp(xp.zeros_like(x), x)
''',
}


def _numpy_source(prog: Program, name: str, dtype: str) -> str:
    printer = NumpyPrinter(prog.names)
    params = ", ".join(prog.names[a] for a in prog.args)
    body: list[str] = [f"{params}, = _broadcast(xp, {params})"]
    for sym, pw in prog.piecewise:
        body.append(f"{printer.names[sym]} = {printer.doprint(pw)}")
    for sym, e in prog.assignments:
        body.append(f"{printer.names[sym]} = {printer.doprint(e)}")
    like = prog.names[prog.args[0]]
    outs = [f"_finish(xp, {printer.doprint(o)}, {like})" for o in prog.outputs]
    if prog.single:
        body.append(f"return {outs[0]}")
    else:
        body.append("return (" + ", ".join(outs) + ",)")
    doc = [
        f'"""Elementwise {"value" if prog.single else "values"} of the expression'
        f"{'' if prog.single else 's'} below, for arrays of any namespace ``xp``.",
        "",
    ]
    for i, e in enumerate(prog.exprs):
        doc.extend(textwrap.wrap(f"out{i} = {sympy.sstr(e)}", 88, subsequent_indent="    "))
    doc.append('"""')
    helpers = ["_broadcast", "_finish"] + sorted(printer.helpers_used)
    parts = [
        _header(prog, target="numpy", dtype=dtype, name=name, comment="#"),
        "import math\n",
        *(_NUMPY_HELPERS[h] for h in helpers),
        "",
        f"def {name}({params}, *, xp):",
        *("    " + line if line else "" for line in doc),
        *("    " + line for line in body),
        "",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------- C / CUDA

_C_HELPERS = {
    "xlogy": """{Q} {T} divkit_xlogy{S}({T} x, {T} y)
{{
    return x == {ZERO} ? {ZERO} : x * log{S}(y);
}}""",
    "xlog1py": """{Q} {T} divkit_xlog1py{S}({T} x, {T} y)
{{
    return x == {ZERO} ? {ZERO} : x * log1p{S}(y);
}}""",
    "log1mexp": """{Q} {T} divkit_log1mexp{S}({T} x)
{{
    /* log(1 - exp(x)), x <= 0 (Maechler 2012) */
    return x > -{LN2} ? log{S}(-expm1{S}(x)) : log1p{S}(-exp{S}(x));
}}""",
    "logaddexp": """{Q} {T} divkit_logaddexp{S}({T} x, {T} y)
{{
    /* numpy's npy_logaddexp: max + log1p(exp(-|x - y|)) */
    if (x == y) {{
        return x + {LN2};
    }}
    const {T} d = x - y;
    if (d > {ZERO}) {{
        return x + log1p{S}(exp{S}(-d));
    }}
    if (d <= {ZERO}) {{
        return y + log1p{S}(exp{S}(d));
    }}
    return d;
}}""",
    "softplus": """{Q} {T} divkit_softplus{S}({T} x)
{{
    /* log(1 + exp(x)) = logaddexp(0, x), numpy's branch order */
    if (x == {ZERO}) {{
        return {LN2};
    }}
    if (x < {ZERO}) {{
        return log1p{S}(exp{S}(x));
    }}
    if (x > {ZERO}) {{
        return x + log1p{S}(exp{S}(-x));
    }}
    return x;
}}""",
    "sign": """{Q} {T} divkit_sign{S}({T} x)
{{
    return x > {ZERO} ? {ONE} : (x < {ZERO} ? -{ONE} : x);
}}""",
}


def _c_helper(kind: str, dtype: str, qualifier: str) -> str:
    ctype, _, suffix = DTYPES[dtype]
    lit = CPrinter(dtype)
    fill = {
        "Q": qualifier,
        "T": ctype,
        "S": suffix,
        "ZERO": lit._float_literal(sympy.Integer(0)),
        "ONE": lit._float_literal(sympy.Integer(1)),
        "LN2": lit._float_literal(sympy.log(2)),
    }
    guard = f"DIVKIT_HELPER_{kind.upper()}{suffix.upper()}_{'CUDA' if '__device__' in qualifier else 'C'}"
    return f"#ifndef {guard}\n#define {guard}\n{_C_HELPERS[kind].format(**fill)}\n#endif\n"


def _c_function(prog: Program, name: str, dtype: str, printer: CPrinter, qualifier: str) -> str:
    ctype = printer.ctype
    params = [f"{ctype} {prog.names[a]}" for a in prog.args]
    lines: list[str] = []
    for sym, pw in prog.piecewise:
        lines.append(f"const {ctype} {printer.names[sym]} = {printer.doprint(pw)};")
    for sym, e in prog.assignments:
        lines.append(f"const {ctype} {printer.names[sym]} = {printer.doprint(e)};")
    if prog.single:
        lines.append(f"return {printer.doprint(prog.outputs[0])};")
        signature = f"{qualifier} {ctype} {name}({', '.join(params)})"
    else:
        outs = [f"{ctype} *out{i}" for i in range(len(prog.outputs))]
        for i, o in enumerate(prog.outputs):
            lines.append(f"*out{i} = {printer.doprint(o)};")
        signature = f"{qualifier} void {name}({', '.join(params + outs)})"
    return signature + "\n{\n" + "".join(f"    {line}\n" for line in lines) + "}\n"


def _loop_call(prog: Program, name: str) -> str:
    args = ", ".join(f"{prog.names[a]}[i]" for a in prog.args)
    if prog.single:
        return f"out0[i] = {name}({args});"
    outs = ", ".join(f"&out{k}[i]" for k in range(len(prog.outputs)))
    return f"{name}({args}, {outs});"


def _c_like_source(prog: Program, name: str, dtype: str, target: str) -> str:
    cuda = target == "cuda"
    printer = (CudaPrinter if cuda else CPrinter)(dtype, prog.names)
    qualifier = "__device__ __forceinline__" if cuda else "static inline"
    function = _c_function(prog, name, dtype, printer, qualifier)
    ctype = printer.ctype
    restrict = "__restrict__" if cuda else "restrict"
    arrays = [f"const {ctype} *{restrict} {prog.names[a]}" for a in prog.args]
    arrays += [f"{ctype} *{restrict} out{k}" for k in range(len(prog.outputs))]
    call = _loop_call(prog, name)
    if cuda:
        loop = (
            f'extern "C" __global__ void {name}_kernel(long long n, {", ".join(arrays)})\n'
            "{\n"
            "    const long long stride = (long long)blockDim.x * gridDim.x;\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;"
            " i += stride) {\n"
            f"        {call}\n"
            "    }\n"
            "}\n"
        )
    else:
        loop = (
            f"void {name}_array(long long n, {', '.join(arrays)})\n"
            "{\n"
            "    for (long long i = 0; i < n; ++i) {\n"
            f"        {call}\n"
            "    }\n"
            "}\n"
        )
    helper_kinds = sorted(printer.helpers_used)
    helpers = "\n".join(_c_helper(k, dtype, qualifier) for k in helper_kinds)
    parts = [_header(prog, target=target, dtype=dtype, name=name, comment="//")]
    if not cuda:
        parts.append("#include <math.h>\n")
    if helpers:
        parts.append(helpers)
    parts.append(function)
    parts.append(loop)
    return "\n".join(parts)


# --------------------------------------------------------------------------- entry point


def source(
    expr,
    *,
    target: str = "numpy",
    dtype: str = "float64",
    name: str | None = None,
    args: Sequence[sympy.Symbol] | None = None,
    passes: Sequence[Pass | str] | None = None,
) -> str:
    """Readable source code computing ``expr`` elementwise.

    Pipeline: the rewrite passes (:func:`numeric.codegen.rewrite`, default
    :data:`numeric.codegen.rewrite.DEFAULT_PASSES`), ``Piecewise`` extraction, common
    subexpression elimination shared by all expressions of a tuple, then the printer of
    ``target``.

    Parameters
    ----------
    expr : sympy.Expr or tuple of sympy.Expr
        What to compute. A tuple gives several outputs sharing one cse.
    target : {"numpy", "c", "cuda"}
        ``"numpy"``: a Python module defining ``name(*args, xp)`` for any array namespace
        (dtype-generic: it computes in the inputs' floating dtype). ``"c"``: C99 with a
        ``static inline`` scalar function ``name`` and an exported loop
        ``void name_array(long long n, const T *arg..., T *out...)``. ``"cuda"``: a
        ``__device__`` function ``name`` (for cupy ``ElementwiseKernel`` preambles or
        ``RawKernel`` sources) and a grid-stride ``extern "C" __global__`` kernel
        ``name_kernel`` with the same parameters as ``name_array``.
    dtype : {"float32", "float64"}
        Element type for C and CUDA (literals rounded to it, ``expf``/``logf``/... for
        float32); recorded in the header for numpy.
    name : str, optional
        Function name; default ``divkit_<hash prefix>`` (plus ``_f32``/``_f64`` for C and
        CUDA).
    args : sequence of sympy.Symbol, optional
        Argument order; default the free symbols sorted by name.
    passes : sequence of Pass or str, optional
        Rewrite passes; default all, in their default order; ``()`` for none.

    Returns
    -------
    str
        The source, beginning with a comment header: codegen and sympy versions, target,
        dtype, the expression hash, the arguments, and each expression (and its rewritten
        form).

    Raises
    ------
    numeric.codegen.UnsupportedFunctionError
        If an expression contains a function the target has no implementation of.
    ValueError
        For an unknown target or dtype, or args that miss a free symbol.

    Examples
    --------
    >>> import sympy
    >>> from numeric import codegen
    >>> x = sympy.Symbol("x", real=True)
    >>> print(codegen.source(sympy.log(1 + x), target="c", dtype="float32",
    ...                      name="lp").split("#include <math.h>")[1].strip())
    static inline float lp(float x)
    {
        return log1pf(x);
    }
    <BLANKLINE>
    void lp_array(long long n, const float *restrict x, float *restrict out0)
    {
        for (long long i = 0; i < n; ++i) {
            out0[i] = lp(x[i]);
        }
    }
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {tuple(TARGETS)}, got {target!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
    prog = program(expr, args, passes=passes)
    name = check_name(name) if name is not None else default_name(prog, target, dtype)
    return TARGETS[target](prog, name, dtype)


def register_target(name: str, emit, *, replace: bool = False) -> None:
    """Add the code-generation target ``name``: ``emit(program, name, dtype) -> str`` prints
    a :class:`Program` (rewritten, cse'd expressions) as source of that target. A new
    target is this call and a backend that runs its output (:mod:`numeric.registry`)."""
    if name in TARGETS and not replace:
        raise ValueError(f"target {name!r} is already registered")
    TARGETS[name] = emit


def unregister_target(name: str) -> None:
    """Remove the code-generation target ``name``."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}")
    del TARGETS[name]


register_target("numpy", _numpy_source)
register_target("c", lambda prog, name, dtype: _c_like_source(prog, name, dtype, "c"))
register_target("cuda", lambda prog, name, dtype: _c_like_source(prog, name, dtype, "cuda"))


__all__ += ["DEFAULT_PASSES", "CodegenError", "default_name", "register_target",
            "unregister_target", "check_name", "normalize_exprs"]
