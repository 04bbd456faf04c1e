"""The committed CUDA / host C kernel sources: regeneration, nvcc, no GPU imports."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import sympy

from numeric import _cuda_sources, codegen
from theory import fdiv


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def regenerated():
    return _cuda_sources.catalog_sources()


def _committed():
    return {
        p.name: p.read_bytes()
        for p in sorted(_cuda_sources.GENERATED_DIR.iterdir())
        if p.suffix in (".cu", ".c")
    }


def test_committed_files_are_the_catalog():
    expected = {f"divkit_{n}.{ext}" for n in fdiv.names() for ext in ("cu", "c")}
    assert set(_committed()) == expected


def test_every_committed_file_regenerates_byte_identically(regenerated):
    committed = _committed()
    versions = {re.search(rb"sympy (\S+)", data).group(1).decode() for data in committed.values()}
    if versions != {sympy.__version__}:
        pytest.skip(
            f"committed sources were generated with sympy {sorted(versions)}, this is "
            f"sympy {sympy.__version__}: regenerate with python -m numeric._cuda_sources"
        )
    stale = [name for name, data in committed.items() if regenerated[name].encode() != data]
    assert not stale, (
        f"generated sources differ from their generator: {stale}; "
        "run python -m numeric._cuda_sources and commit the result"
    )


def test_sources_are_labelled(regenerated):
    for name, text in regenerated.items():
        head = text.split("\n\n", 1)[0]
        assert f"sympy {sympy.__version__}" in head
        assert f"codegen version: {codegen.CODEGEN_VERSION}" in head
        assert re.search(r"forms hash: sha256:[0-9a-f]{64}", head)
        catalog_name = name.split(".")[0].removeprefix("divkit_")
        assert f"f(u) = {sympy.sstr(fdiv.get(catalog_name).f)}" in head
        for tag in ("f32", "f64"):
            assert f"divkit_{catalog_name}_{tag}_rows(" in text
        if name.endswith(".cu"):
            assert text.count('extern "C" __global__') == 2
            assert "#include" not in text  # NVRTC-ready: no host headers
            assert "INFINITY" not in text and "NAN" not in text
        else:
            assert "#include <math.h>" in text and "__global__" not in text


def test_float32_kernels_use_float_math(regenerated):
    text = regenerated["divkit_js.cu"]
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)  # comments removed
    f32 = code.split("divkit_js_f32_rows(", 1)[0]
    assert "expf(" in f32 and "log1pf(" in f32
    # no double-precision function or literal inside the float32 half
    assert not re.search(r"\b(exp|log|log1p|expm1|fma)\(", f32)
    assert not re.search(r"(?<![\w.])\d+\.\d+(?![\d.ef])", f32)
    f64 = code.split("divkit_js_f32_rows(", 1)[1].split("\n}\n", 1)[1]  # after that kernel
    assert re.search(r"\bexp\(", f64) and not re.search(r"\d\.\d*f\b", f64)


def test_row_kernel_source_for_a_user_defined_divergence():
    u = sympy.Symbol("u", positive=True)
    custom = fdiv.FDivergence((u - 1) ** 2 / (u + 2), name="custom")
    text = _cuda_sources.row_kernel_source(custom, target="cuda", dtypes=("float64",))
    assert "divkit_custom_f64_rows" in text and "_f32_" not in text
    with pytest.raises(ValueError, match="target: expected one of"):
        _cuda_sources.row_kernel_source("kl", target="opencl")


@pytest.mark.skipif(codegen.find_nvcc() is None, reason="nvcc not installed on this machine")
def test_committed_cuda_sources_compile_with_nvcc():
    sources = [data.decode() for name, data in _committed().items() if name.endswith(".cu")]
    assert codegen.nvcc_check(*sources)


def test_importing_the_generators_imports_no_gpu_library():
    code = (
        "import sys, numeric, numeric._cuda_sources, numeric.codegen\n"
        "bad = [m for m in ('cupy', 'torch', 'cupyx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
