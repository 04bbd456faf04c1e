"""Printers: golden strings, errors, masked branches, host C against numpy, nvcc."""

from __future__ import annotations

import math

import array_api_compat.numpy as xp_numpy
import mpmath
import numpy as np
import pytest
import sympy

from numeric import codegen
from numeric.codegen import nodes
from numeric.codegen.printers import CPrinter, CudaPrinter, NumpyPrinter

x, y = sympy.symbols("x y", real=True)
p = sympy.Symbol("p", positive=True)

needs_cc = pytest.mark.skipif(codegen.find_cc() is None, reason="no C compiler on this machine")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- golden

GOLDEN = [
    # expr, numpy, C float32, C float64, CUDA float32
    (
        sympy.exp(x) / 3 + y**2,
        "y*y + xp.exp(x)/3.0",
        "y*y + expf(x)/3.0f",
        "y*y + exp(x)/3.0",
        "y*y + expf(x)/3.0f",
    ),
    (
        nodes.log1p(x) - 2 * y,
        "-2.0*y + xp.log1p(x)",
        "-2.0f*y + log1pf(x)",
        "-2.0*y + log1p(x)",
        "-2.0f*y + log1pf(x)",
    ),
    (x / (y * (x + 1)), "x/(y*(1.0 + x))", "x/(y*(1.0f + x))", "x/(y*(1.0 + x))", "x/(y*(1.0f + x))"),
    (
        sympy.sqrt(x) + 1 / sympy.sqrt(y),
        "xp.sqrt(x) + 1.0/xp.sqrt(y)",
        "sqrtf(x) + 1.0f/sqrtf(y)",
        "sqrt(x) + 1.0/sqrt(y)",
        "sqrtf(x) + 1.0f/sqrtf(y)",
    ),
    (
        x ** sympy.Rational(5, 2),
        "x**(5.0/2.0)",
        "powf(x, 5.0f/2.0f)",
        "pow(x, 5.0/2.0)",
        "powf(x, 5.0f/2.0f)",
    ),
    (sympy.pi * x, "3.141592653589793*x", "3.1415927f*x", "3.141592653589793*x", "3.1415927f*x"),
    (
        nodes.xlogy(x, y),
        "_xlogy(xp, x, y)",
        "divkit_xlogyf(x, y)",
        "divkit_xlogy(x, y)",
        "divkit_xlogyf(x, y)",
    ),
    (
        nodes.logaddexp(x, y),
        "xp.logaddexp(x, y)",
        "divkit_logaddexpf(x, y)",
        "divkit_logaddexp(x, y)",
        "divkit_logaddexpf(x, y)",
    ),
    (sympy.Max(x, y), "xp.maximum(x, y)", "fmaxf(x, y)", "fmax(x, y)", "fmaxf(x, y)"),
    (
        sympy.Piecewise((sympy.log(x), x > 0), (0, True)),
        "_piecewise(xp, (x,), ((lambda x: x > 0.0, lambda x: xp.log(x)), (lambda x: True, lambda x: 0.0),))",
        "(x > 0.0f ? logf(x) : 0.0f)",
        "(x > 0.0 ? log(x) : 0.0)",
        "(x > 0.0f ? logf(x) : 0.0f)",
    ),
    (
        sympy.Piecewise((x, sympy.And(x > 0, y < 1)), (y, True)),
        "_piecewise(xp, (x, y,), ((lambda x, y: (x > 0.0) & (y < 1.0), lambda x, y: x), "
        "(lambda x, y: True, lambda x, y: y),))",
        "((x > 0.0f) && (y < 1.0f) ? x : y)",
        "((x > 0.0) && (y < 1.0) ? x : y)",
        "((x > 0.0f) && (y < 1.0f) ? x : y)",
    ),
    (sympy.oo * x, "math.inf*x", "(float)INFINITY*x", "(double)INFINITY*x", "__int_as_float(0x7f800000)*x"),
]


@pytest.mark.parametrize("expr, numpy_text, c32, c64, cuda32", GOLDEN, ids=[str(g[0]) for g in GOLDEN])
def test_golden_expressions(expr, numpy_text, c32, c64, cuda32):
    assert NumpyPrinter().doprint(expr) == numpy_text
    assert CPrinter("float32").doprint(expr) == c32
    assert CPrinter("float64").doprint(expr) == c64
    assert CudaPrinter("float32").doprint(expr) == cuda32


def test_golden_c_source_body():
    text = codegen.source(
        (nodes.log1p(x), x * y), target="c", dtype="float64", name="pair", args=[x, y], passes=()
    )
    body = text.split("#include <math.h>\n", 1)[1]
    assert body == (
        "\n"
        "static inline void pair(double x, double y, double *out0, double *out1)\n"
        "{\n"
        "    *out0 = log1p(x);\n"
        "    *out1 = x*y;\n"
        "}\n"
        "\n"
        "void pair_array(long long n, const double *restrict x, const double *restrict y, "
        "double *restrict out0, double *restrict out1)\n"
        "{\n"
        "    for (long long i = 0; i < n; ++i) {\n"
        "        pair(x[i], y[i], &out0[i], &out1[i]);\n"
        "    }\n"
        "}\n"
    )


def test_golden_cuda_source_body():
    text = codegen.source(sympy.exp(x) - 1, target="cuda", dtype="float32", name="em1", args=[x])
    body = text.split("\n\n", 1)[1]
    assert body == (
        "__device__ __forceinline__ float em1(float x)\n"
        "{\n"
        "    return expm1f(x);\n"
        "}\n"
        "\n"
        'extern "C" __global__ void em1_kernel(long long n, const float *__restrict__ x, '
        "float *__restrict__ out0)\n"
        "{\n"
        "    const long long stride = (long long)blockDim.x * gridDim.x;\n"
        "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;"
        " i += stride) {\n"
        "        out0[i] = em1(x[i]);\n"
        "    }\n"
        "}\n"
    )


def test_cse_shared_across_outputs():
    e = sympy.exp(x + y)
    text = codegen.source((e * x, e * y), target="c", name="two", args=[x, y])
    body = text.split("#include <math.h>", 1)[1]
    assert body.count("exp(x + y)") == 1
    assert "const double t0 = exp(x + y);" in text


def test_float32_literals_are_correctly_rounded():
    printer = CPrinter("float32")
    assert printer.doprint(sympy.Rational(1, 3)) == "1.0f/3.0f"  # one correctly rounded division
    for value in (
        sympy.Rational(1, 3),
        sympy.pi,
        sympy.Integer(2**60 + 1),
        sympy.Rational(1, 10),
        sympy.log(2),
        sympy.Float("1e-30"),
        sympy.Rational(2**70 + 1, 3**40),
    ):
        text = printer._float_literal(value)
        assert text.endswith("f")
        printed = np.float32(text[:-1])
        assert printed == np.float32(float(text[:-1]))  # the text itself is exact in float32
        with mpmath.workprec(200):
            exact = mpmath.mpf(sympy.N(value, 60)._mpf_)
            error = abs(mpmath.mpf(float(printed)) - exact)
            # correctly rounded: no other float32 is closer
            for other in (
                np.nextafter(printed, np.float32(np.inf)),
                np.nextafter(printed, np.float32(-np.inf)),
            ):
                assert error <= abs(mpmath.mpf(float(other)) - exact)


def test_numeric_constants_do_not_promote_float32():
    fn = codegen.numpy_function(sympy.log(2) * x + sympy.pi, [x])
    out = fn(np.ones(3, dtype=np.float32))
    assert out.dtype == np.float32


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "expr", [sympy.erf(x), sympy.LambertW(x), sympy.Function("g")(x), sympy.gamma(x) + 1]
)
@pytest.mark.parametrize("target", ["numpy", "c", "cuda"])
def test_unknown_function_is_an_error(expr, target):
    with pytest.raises(codegen.UnsupportedFunctionError, match=f"{target}: no implementation"):
        codegen.source(expr, target=target)


def test_unprintable_nodes_and_bad_arguments():
    with pytest.raises(codegen.UnsupportedFunctionError, match="cannot print a Integral"):
        codegen.source(sympy.Integral(x, (y, 0, 1)) + x, target="c")
    with pytest.raises(codegen.CodegenError, match="complex constant"):
        codegen.source(sympy.I * x, target="c")
    with pytest.raises(ValueError, match="target: expected one of"):
        codegen.source(x, target="fortran")
    with pytest.raises(ValueError, match="dtype: expected one of"):
        codegen.source(x, target="c", dtype="float16")
    with pytest.raises(ValueError, match="args: the expression uses symbols not in args: y"):
        codegen.source(x + y, args=[x])
    with pytest.raises(ValueError, match="name: expected a C/Python identifier"):
        codegen.source(x, name="not valid")


def test_reserved_and_odd_symbol_names_are_mangled():
    odd = sympy.Symbol("x.1", real=True)
    xp = sympy.Symbol("xp", real=True)
    fn = codegen.numpy_function(odd + 2 * xp, [odd, xp])
    assert float(fn(np.array(1.0), np.array(3.0))) == 7.0
    text = codegen.source(odd + 2 * xp, args=[odd, xp], target="c")
    assert "double arg0, double arg1" in text


# --------------------------------------------------------------------------- masked branches


class CountingNamespace:
    """Delegates to array_api_compat.numpy and records the sizes seen by ``log``."""

    def __init__(self):
        self.log_sizes = []

    def __getattr__(self, name):
        return getattr(xp_numpy, name)

    def log(self, a):
        self.log_sizes.append(int(np.size(a)))
        return xp_numpy.log(a)


def test_piecewise_branches_are_evaluated_only_where_they_hold():
    expr = sympy.Piecewise((sympy.log(x), x > 0), (-x, True))
    fn = codegen.numpy_function(expr, [x])
    values = np.array([-2.0, 3.0, -1.0, 0.0, 5.0, -7.0])
    xp = CountingNamespace()
    with np.errstate(all="raise"):  # log of a negative number would raise here
        out = fn(values, xp=xp)
    assert xp.log_sizes == [2]
    np.testing.assert_array_equal(out, [2.0, math.log(3.0), 1.0, 0.0, math.log(5.0), 7.0])


def test_piecewise_conditions_are_evaluated_only_where_reached():
    # the second condition takes a log: it must only see the x > 0 elements
    expr = sympy.Piecewise((0, x <= 0), (1, sympy.log(x) > 1), (2, True))
    fn = codegen.numpy_function(expr, [x])
    xp = CountingNamespace()
    with np.errstate(all="raise"):
        out = fn(np.array([[-1.0, 0.5], [4.0, 0.0]]), xp=xp)
    assert xp.log_sizes == [2]
    np.testing.assert_array_equal(out, [[0.0, 2.0], [1.0, 0.0]])


def test_piecewise_without_default_gives_nan_where_no_branch_holds():
    fn = codegen.numpy_function(sympy.Piecewise((x, x > 0)), [x])
    out = fn(np.array([1.0, -1.0]))
    assert out[0] == 1.0 and math.isnan(out[1])


def test_helpers_do_not_evaluate_the_dead_branch():
    fn = codegen.numpy_function((nodes.xlogy(x, y), nodes.xlog1py(x, y)), [x, y])
    with np.errstate(all="raise"):  # log(0) or log1p(-1) would raise
        a, b = fn(np.array([0.0, 0.0, 2.0]), np.array([0.0, -1.0, 3.0]))
    assert a.tolist()[:2] == [0.0, 0.0] and b.tolist()[:2] == [0.0, 0.0]
    assert a[2] == 2.0 * math.log(3.0) and b[2] == 2.0 * math.log1p(3.0)
    lme = codegen.numpy_function(nodes.log1mexp(x), [x])
    xp = CountingNamespace()
    with np.errstate(all="raise"):
        out = lme(np.array([-1e-20, -50.0, -0.1]), xp=xp)
    assert xp.log_sizes == [2]  # log(-expm1) only on the two elements above -log 2
    with mpmath.workdps(50):
        for got, v in zip(out, (-1e-20, -50.0, -0.1), strict=True):
            want = mpmath.log(-mpmath.expm1(mpmath.mpf(v)))
            assert abs(got - want) <= 2 * np.spacing(abs(float(want)))


def test_generic_namespace_and_broadcasting():
    fn = codegen.numpy_function((x * y, sympy.Integer(3) + 0 * x), [x, y])
    a, b = fn(np.arange(3.0)[:, None], np.ones(4))
    assert a.shape == (3, 4) and b.shape == (3, 4)
    assert np.all(b == 3.0)
    # raw numpy as the namespace, and Python scalars
    a, _ = fn(2.0, 3.0, xp=np)
    assert float(a) == 6.0
    ints = fn(np.arange(3), np.arange(3))[0]
    assert ints.dtype == np.float64


# --------------------------------------------------------------------------- host C vs numpy

HOST_CASES = [
    # well-conditioned combinations (no cancellation between terms), so a 1-ulp difference
    # of two libm implementations stays a few ulps in the result
    ("log1p_xlogy", (nodes.log1p(x) + nodes.xlogy(x, y),), [x, y], ((0.0, 3.0), (1.0, 5.0))),
    ("logaddexp", (nodes.logaddexp(x, y), nodes.softplus(x - y)), [x, y], ((-30.0, 30.0), (-30.0, 30.0))),
    ("log1mexp", (nodes.log1mexp(-x),), [x], ((1e-12, 40.0),)),
    ("expm1_pow", (nodes.expm1(x) * y**3 + x ** sympy.Rational(3, 2) / y,), [x, y], ((0.0, 2.0), (0.5, 2.0))),
    (
        "piecewise",
        (sympy.Piecewise((sympy.log(x) * y, x > 1), (x * x - y, True)),),
        [x, y],
        ((0.1, 3.0), (0.1, 3.0)),
    ),
    (
        "sigmoid_like",
        (nodes.log1p(sympy.exp(x)) / 2 + x * x * sympy.exp(x) / (1 + sympy.exp(x)),),
        [x],
        ((-20.0, 20.0),),
    ),
]


def _ulp_distance(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) | both_nan
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)))
    with np.errstate(all="ignore"):
        dist = np.where(same, 0.0, np.abs(a.astype(np.float64) - b.astype(np.float64)) / scale)
    return np.where(np.isfinite(dist), dist, np.inf)


@needs_cc
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", HOST_CASES, ids=[c[0] for c in HOST_CASES])
def test_host_c_matches_numpy(case, dtype):
    _, exprs, args, ranges = case
    rng = np.random.default_rng(11)
    inputs = [rng.uniform(lo, hi, size=2000).astype(dtype) for lo, hi in ranges]
    via_numpy = codegen.numpy_function(list(exprs), args)(*inputs)
    via_c = codegen.c_function(list(exprs), args, dtype=dtype)(*inputs)
    assert len(via_numpy) == len(via_c) == len(exprs)
    for got_np, got_c in zip(via_numpy, via_c, strict=True):
        assert got_np.dtype == got_c.dtype == np.dtype(dtype)
        assert got_np.shape == got_c.shape == inputs[0].shape
        worst = float(np.max(_ulp_distance(got_np, got_c)))
        assert worst <= 4, f"host C and numpy differ by {worst} ulps"


@needs_cc
def test_host_c_compile_error_is_reported():
    with pytest.raises(codegen.CodegenError, match="C compilation failed"):
        codegen.compile_c("this is not C;")


def test_cuda_elementwise_spec():
    spec = codegen.cuda_elementwise((x + y, x * y), [x, y], dtype="float64", name="sp")
    assert spec["in_params"] == "float64 x, float64 y"
    assert spec["out_params"] == "float64 out0, float64 out1"
    assert spec["operation"] == "sp(x, y, &out0, &out1)"
    assert "__device__ __forceinline__ void sp(double x, double y, double *out0" in spec["preamble"]


@pytest.mark.skipif(codegen.find_nvcc() is None, reason="nvcc not installed")
def test_cuda_sources_compile_with_nvcc():
    sources = []
    for name, exprs, args, _ in HOST_CASES:
        for dtype in ("float32", "float64"):
            sources.append(
                codegen.source(exprs, target="cuda", dtype=dtype, args=args, name=f"{name}_{dtype}")
            )
    sources.append(
        codegen.source(
            nodes.xlog1py(x, y) + sympy.sign(x) + sympy.oo * y, target="cuda", dtype="float32", name="misc"
        )
    )
    assert codegen.nvcc_check(*sources)
    with pytest.raises(codegen.CodegenError, match="nvcc failed"):
        codegen.nvcc_check("__device__ float broken( {")
