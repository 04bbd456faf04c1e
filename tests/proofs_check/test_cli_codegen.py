"""``divkit codegen``: files for every catalog family and a user f, compiled and checked
against numeric's path (issue 22). The tests use only the contract of
``numeric.codegen.kernel_files`` / ``kernel_constants``: file names come from the dict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import numeric
from numeric.codegen import find_cc, find_nvcc, kernel_constants, kernel_files
from numeric.tolerances import backend_rtol
from proofs_check.cli import main
from theory import fdiv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "numeric"))
import cuda_emu  # noqa: E402  (tests/numeric/cuda_emu.py: CUDA source on the host)

needs_cc = pytest.mark.skipif(find_cc() is None, reason="no C compiler")
USER_F = "(sqrt(u) - 1)**2 + u*log(u) - u + 1"


def _codegen(capsys, tmp_path, *argv):
    status = main(["codegen", *argv, "--out", str(tmp_path / "out"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    return status, doc


@needs_cc
@pytest.mark.parametrize("argv", [
    ["js", "--param", "beta=0.3"],
    ["--f", USER_F],
    ["alpha", "--param", "alpha=1/3", "--dtype", "float64"],
])
def test_c_files_compile_with_wall_werror_and_one_row_agrees(capsys, tmp_path, argv):
    status, doc = _codegen(capsys, tmp_path, *argv, "--target", "c", "--check")
    assert status == 0, doc["checks"]
    whats = " | ".join(c["what"] for c in doc["checks"])
    assert "cc -Wall -Werror" in whats and "row kernel" in whats and "probability kernel" in whats
    assert all(c["ok"] for c in doc["checks"])
    for path in doc["files"]:
        assert Path(path).is_file() and Path(path).read_text()


def test_json_lists_the_files_and_the_constants(capsys, tmp_path):
    status, doc = _codegen(capsys, tmp_path, "js", "--param", "beta=0.3", "--target", "cuda")
    assert status == 0
    files = kernel_files("js", target="cuda", params={"beta": 0.3})
    assert sorted(Path(p).name for p in doc["files"]) == sorted(Path(n).name for n in files)
    layout, cst = kernel_constants("js", params={"beta": 0.3})
    assert doc["constants"]["layout"] == layout
    assert doc["constants"]["values"][layout["THETA"]] == 0.3
    np.testing.assert_array_equal(
        np.array([float(x) for x in doc["constants"]["values"]]), cst)   # "inf" -> inf
    readme = [p for p in doc["files"] if p.endswith("README.md")]
    assert readme and "cst" in Path(readme[0]).read_text()


def test_table_output_says_where_the_files_are(capsys, tmp_path):
    assert main(["codegen", "kl", "--target", "numpy", "--out", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert f"to {tmp_path / 'k'}/" in out


def test_numpy_forms_agree_with_numeric(capsys, tmp_path):
    status, doc = _codegen(capsys, tmp_path, "--f", "(u**a - 1 - a*(u - 1))/(a*(a - 1))",
                           "--params", "a=1/2", "--target", "numpy", "--check")
    assert status == 0
    assert any("vs numeric.divergence" in c["what"] and c["ok"] for c in doc["checks"])


@pytest.mark.parametrize("argv, message", [
    (["kl", "--f", "u*log(u)"], "either a catalog NAME or --f EXPR"),
    (["kll"], "kll"),
    (["js", "--param", "beta"], "--param expects K=V"),
    (["--f", "__import__('os').system('true')"], "error"),
    ([], "give a catalog NAME or --f EXPR"),
])
def test_usage_errors(capsys, tmp_path, argv, message):
    assert main(["codegen", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _emulated_row(files, f, params, dtype):
    """Run the written CUDA row kernel through the host emulation; one row."""
    from numeric.codegen._files import ENTRY_FILES, amalgamate

    mod = cuda_emu.build(amalgamate(files, ENTRY_FILES["cuda"]))
    tag = "f32" if dtype == "float32" else "f64"
    (name,) = [k for k in mod.signatures if k.endswith(f"_{tag}_rows")]
    _, cst = kernel_constants(f, params=params)
    rng = np.random.default_rng(11)
    t = (1.5 * rng.standard_normal((1, 45))).astype(dtype)
    s = (1.5 * rng.standard_normal((1, 45))).astype(dtype)
    loss = np.empty(1, dtype=dtype)
    gs, gt = np.empty_like(t), np.empty_like(t)
    one = np.dtype(dtype).type(1.0)
    mod.launch(name, (1, 1, 1), (64, 1, 1),
               [np.int64(1), np.int64(t.shape[1]), t, s, one, one, None,
                np.ascontiguousarray(cst), loss, gs, gt])
    ref = numeric.divergence_from_logits(f, t.astype(np.float64), s.astype(np.float64),
                                         reduction="none", return_grad=True, teacher_grad=True,
                                         params=params)
    rtol = backend_rtol(dtype)
    assert abs(float(loss[0]) - float(ref[0][0])) <= rtol * abs(float(ref[0][0]))
    for got, want in ((gs, ref[1]), (gt, ref[2])):
        assert np.max(np.abs(got - want)) <= rtol * np.max(np.abs(want))


def _nvcc(files, tmp_path):
    import subprocess

    nvcc = find_nvcc()
    for name, text in files.items():       # the headers beside the entry, as written
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for name in files:
        if name.endswith(".cu"):
            path = tmp_path / name
            proc = subprocess.run([nvcc, "-c", "-std=c++17", "-o", str(path.with_suffix(".o")),
                                   str(path)], capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(cuda_emu.find_gxx() is None, reason="no g++ for the CUDA emulation")
def test_cuda_row_of_one_family_runs_through_the_emulation():
    files = kernel_files("js", target="cuda", dtype="float32", params={"beta": 0.3})
    _emulated_row(files, "js", {"beta": 0.3}, "float32")


@pytest.mark.skipif(find_nvcc() is None, reason="nvcc not found")
def test_cuda_of_one_family_compiles_with_nvcc(capsys, tmp_path):
    status, doc = _codegen(capsys, tmp_path, "hellinger", "--target", "cuda", "--check")
    assert status == 0
    assert any(c["what"].startswith("nvcc -c") and c["ok"] for c in doc["checks"])


def _catalog_cases():
    cases = [(n, None) for n in fdiv.names()]
    cases.append((fdiv.FDivergence.from_string(USER_F), None))
    return cases


@pytest.mark.slow
@needs_cc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("f, params", _catalog_cases(), ids=lambda x: str(x)[:20])
def test_every_family_c_compiles_and_agrees(tmp_path, f, params, dtype):
    from proofs_check._cli_codegen import check_files

    files = kernel_files(f, target="c", dtype=dtype, params=params)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    checks = check_files(tmp_path, list(files), f, params, "c", dtype)
    assert checks and all(c["ok"] for c in checks), checks


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.find_gxx() is None, reason="no g++ for the CUDA emulation")
@pytest.mark.parametrize("f, params", _catalog_cases(), ids=lambda x: str(x)[:20])
def test_every_family_cuda_compiles_and_runs_emulated(tmp_path, f, params):
    files = kernel_files(f, target="cuda", dtype="float32", params=params)
    if find_nvcc() is not None:
        _nvcc(files, tmp_path)
    _emulated_row(files, f, params, "float32")
