"""The kernel files of numeric/kernels/: compiled standalone, no C text in Python, the
public ``kernel_files`` / ``kernel_constants`` and the ABI they share."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import numeric
from numeric import _abi, codegen
from numeric.codegen import kernel_constants, kernel_files
from theory import fdiv

ROOT = Path(numeric.__file__).resolve().parent

#: Fragments of C source that must live in numeric/kernels/, never in a Python string.
C_FRAGMENTS = ("#include <", "for (int", "for (long long", "static inline", "__syncthreads",
               "__shfl", "#pragma omp", "__device__")


def test_no_c_text_in_python_kernel_modules():
    """Only the printed element forms (and the kernels' prototypes, printed from the ABI's
    signature) come from Python; loops, helpers and kernels are files."""
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.relative_to(ROOT).as_posix() in _LEGACY:
            continue
        text = path.read_text()
        for frag in C_FRAGMENTS:
            if frag in text:
                offenders.append(f"{path.relative_to(ROOT)}: {frag!r}")
    assert not offenders, offenders


#: The generic elementwise code generator (numeric.codegen.source, which prints a
#: stand-alone function and its loop for any expression) keeps its templates; the kernels do not
#: use it, and _cupy's parser names the pattern it reads.
_LEGACY = {"codegen/_source.py", "codegen/_runtime.py", "codegen/__init__.py", "_cupy.py"}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.skipif(codegen.find_cc() is None, reason="no C compiler")
@pytest.mark.parametrize("name", ["kl", "js", "alpha"])
def test_host_files_compile_standalone_with_all_warnings(tmp_path, name):
    files = kernel_files(name, target="c", params={"alpha": 0.3} if name == "alpha" else None)
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    cc = codegen.find_cc()
    proc = subprocess.run(
        [cc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fopenmp-simd", "-fsyntax-only",
         "divkit_host.c"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        [cc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fopenmp-simd", "-DDK_VECTOR_MATH",
         "-fsyntax-only", "divkit_host.c"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(codegen.find_nvcc() is None, reason="nvcc not installed")
def test_cuda_files_compile_with_nvcc(tmp_path):
    files = kernel_files("js", target="cuda")
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    proc = subprocess.run([codegen.find_nvcc(), "-c", "-o", "k.o", "-Werror", "all-warnings",
                           "divkit_rows.cu"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_kernel_files_name_the_entry_points_and_the_layout():
    for target, entry, symbol in (("c", "divkit_host.c", "divkit_kl_f64_rows_inf32("),
                                  ("cuda", "divkit_rows.cu", "divkit_kl_f32_rows(")):
        files = kernel_files("kl", target=target)
        assert entry in files and "divkit_forms.h" in files and "README.md" in files
        assert "divkit_common.h" in files
        readme = files["README.md"]
        assert symbol in readme
        lay = _abi.layout(0)
        assert f"| {lay['GS']} | student-gradient term q g(r): X(0+)" in readme
        # every local include resolves inside the returned files
        for text in files.values():
            for inc in re.findall(r'#include "([^"]+)"', text):
                assert inc in files
    forms_py = kernel_files("js", target="numpy", params={"beta": 0.3})
    assert {f"divkit_js_{el}_{b}.py" for el in ("loss", "gs", "gt") for b in ("lo", "hi")} \
        <= set(forms_py)
    # the loss lo form, summed over a row, is D_f(P||Q) (normalised rows): against the
    # closed form of JS_beta, not against divkit's own kernels
    import numpy as np

    ns = {}
    exec(compile(forms_py["divkit_js_loss_lo.py"], "divkit_js_loss_lo.py", "exec"), ns)
    p = np.array([0.2, 0.3, 0.5])
    q = np.array([0.4, 0.4, 0.2])
    beta = 0.3
    m = beta * p + (1 - beta) * q
    want = beta * np.sum(p * np.log(p / m)) + (1 - beta) * np.sum(q * np.log(q / m))
    got = np.sum(ns["divkit_js_loss_lo"](np.log(p / q), q, beta, xp=np))
    assert abs(got - want) <= 1e-14 * want
    with pytest.raises(ValueError, match="target"):
        kernel_files("kl", target="opencl")
    with pytest.raises(ValueError, match="dtype"):
        kernel_files("kl", target="c", dtype="float16")


def test_kernel_files_of_a_family_and_a_member():
    fam = fdiv.family("alpha")
    member = fdiv.get("alpha", alpha="3/10")
    a = kernel_files(fam, target="c")
    b = kernel_files(member, target="c")
    assert a["divkit_host.c"] == b["divkit_host.c"]
    assert "#define DK_NTHETA 1" in a["divkit_forms.h"]


def test_kernel_constants_follow_the_named_offsets():
    offsets, cst = kernel_constants("alpha", params={"alpha": 0.3})
    assert cst.dtype == np.float64 and cst.size == offsets["SIZE"] and not cst.flags.writeable
    assert cst[offsets["THETA"]] == 0.3
    # KL's loss term q F(r), F(u) = u log u - u + 1: F(0+) = 1, lim F(u)/u = inf
    off, cst = kernel_constants("kl")
    assert cst[off["LOSS"] + off["EL_AT_P_ZERO"]] == 1.0
    assert np.isinf(cst[off["LOSS"] + off["EL_AT_Q_ZERO"]])
    # its series near r = 1: F(e^l) = l^2/2 + l^3/6 + ..., radius > 0
    series = cst[off["LOSS"] + off["EL_SERIES"]:]
    assert cst[off["LOSS"] + off["EL_RADIUS"]] > 0
    assert series[0] == 0 and series[1] == 0 and series[2] == pytest.approx(0.5, rel=1e-15)
    # a new value is a new array of the same layout, no new source
    off2, cst2 = kernel_constants("alpha", params={"alpha": 0.45})
    assert off2 == kernel_constants("alpha", params={"alpha": 0.3})[0] and cst2[0] == 0.45
    with pytest.raises(ValueError):
        _abi.layout(-1)
