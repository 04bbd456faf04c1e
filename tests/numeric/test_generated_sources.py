"""The CUDA / host C kernel sources: golden files, labels, nvcc, no GPU imports.

Sources are generated on demand; ``tests/numeric/golden/`` holds one golden file per target
(the JS kernel, both dtypes), regenerated here byte for byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


GOLDEN = Path(__file__).with_name("golden")


def test_catalog_sources_cover_the_catalog(regenerated):
    assert set(regenerated) == {f"divkit_{n}.{ext}" for n in fdiv.names() for ext in ("cu", "c")}


@pytest.mark.parametrize("target", ["cu", "c"])
def test_golden_file_regenerates_byte_identically(regenerated, target):
    # the sympy version in the label is not compared: a new sympy that prints the same
    # kernel passes, one that prints it differently fails here (regenerate and review)
    def unlabelled(text: bytes) -> bytes:
        return re.sub(rb"sympy \S+", b"sympy <version>", text)

    golden = unlabelled((GOLDEN / f"divkit_js.{target}").read_bytes())
    assert unlabelled(regenerated[f"divkit_js.{target}"].encode()) == golden, (
        "the generated JS kernel differs from tests/numeric/golden; if the change is intended, "
        "regenerate it (python -m numeric._cuda_sources DIR, copy divkit_js.*)")


def test_sources_are_labelled(regenerated):
    for name, text in regenerated.items():
        head = text.split("\n\n", 1)[0]
        assert f"sympy {sympy.__version__}" in head
        assert f"codegen version: {codegen.CODEGEN_VERSION}" in head
        assert re.search(r"forms hash: sha256:[0-9a-f]{64}", head)
        catalog_name = name.split(".")[0].removeprefix("divkit_")
        assert f"f(u) = {sympy.sstr(fdiv.family(catalog_name).generator)}" in head
        for tag in ("f32", "f64"):
            entry = (f"divkit_{catalog_name}_{tag}_rows(" if name.endswith(".cu")
                     else f"#define DK_FAMILY divkit_{catalog_name}\n")
            assert entry in text
        if name.endswith(".cu"):
            protos = re.findall(r'extern "C" __global__ void (\w+)\(', text)
            assert set(protos) == {f"divkit_{catalog_name}_{t}_rows" for t in ("f32", "f64")}
            assert "#include" not in text  # NVRTC-ready: no host headers
            # INFINITY / NAN only in the host branch of the dtype headers (#ifdef DK_CUDA)
            for line in text.splitlines():
                if "INFINITY" in line or re.search(r"\bNAN\b", line):
                    assert line.startswith("#define DK_"), line
        else:
            assert "#include <math.h>" in text and "__global__" not in text


def test_float32_kernels_use_float_math(regenerated):
    text = regenerated["divkit_js.cu"]
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)  # comments removed
    # the float32 instantiation: from the f32 dtype header to the f64 one
    f32 = code.split("#define DK_F32 1", 1)[1].split("#define DK_F32 0", 1)[0]
    f32 = re.sub(r"#else\n.*?#endif", "", f32, flags=re.S)  # the other dtype's branches
    printed = re.findall(r"DK_Q float divkit_js_f32_\w+\([^)]*\)\n\{.*?\n\}", f32, flags=re.S)
    assert printed and any("expf(" in p for p in printed)
    # no double-precision function inside the float32 half, no double literal in its forms
    assert not re.search(r"\b(exp|log|log1p|expm1|fma|sqrt|pow)\(", f32)
    for p in printed:
        assert not re.search(r"(?<![\w.])\d+\.\d+(?![\d.ef])", p), p
    f64 = code.split("#define DK_F32 0", 1)[1]
    f64 = re.sub(r"#if DK_F32\n.*?#else\n", "", f64, flags=re.S)  # the float32 branches
    assert re.search(r"\bexp\(", f64) and not re.search(r"\d\.\d*f\b", f64)


def test_row_kernel_source_for_a_user_defined_divergence():
    u = sympy.Symbol("u", positive=True)
    custom = fdiv.FDivergence((u - 1) ** 2 / (u + 2), name="custom")
    text = _cuda_sources.row_kernel_source(custom, target="cuda", dtypes=("float64",))
    assert "divkit_custom_f64_rows(" in text and "divkit_custom_f32_" not in text
    with pytest.raises(ValueError, match="target: expected one of"):
        _cuda_sources.row_kernel_source("kl", target="opencl")


@pytest.mark.slow
@pytest.mark.skipif(codegen.find_nvcc() is None, reason="nvcc not installed on this machine")
def test_generated_cuda_sources_compile_with_nvcc(regenerated):
    # nvcc takes 20 s a source here: the slow tier; the default tier compiles the printers'
    # sources with nvcc (test_codegen_printers.py) and every row kernel for the host
    # through the CUDA emulation header (test_cuda_emulated.py)
    sources = [text for name, text in regenerated.items() if name.endswith(".cu")]
    assert codegen.nvcc_check(*sources)


def test_importing_the_generators_imports_no_gpu_library():
    code = (
        "import sys, numeric, numeric._cuda_sources, numeric.codegen\n"
        "bad = [m for m in ('cupy', 'torch', 'cupyx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
