"""benchmarks/gpu_divergence.py on a machine without a GPU: it parses, imports lazily, and its
pure-python parts (bytes, bandwidth, tables, ratios, budget, arguments) are right."""

from __future__ import annotations

import doctest
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_divergence.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_divergence", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def test_importing_the_script_loads_no_gpu_library():
    code = (f"import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('b', {str(SCRIPT)!r})\n"
            "mod = importlib.util.module_from_spec(spec)\n"
            "sys.modules['b'] = mod\n"
            "spec.loader.exec_module(mod)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cupy', 'torch', 'triton', 'liger_kernel'))\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == ""


def test_docstring_examples(bench):
    result = doctest.testmod(bench, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_bandwidth_arithmetic(bench):
    # 4096 x 128256 float32: 3 * 2.1 GB = 6.30 GB moved; at the 4.26 TB/s copy rate 1.48 ms
    assert bench.ideal_bytes(4096, 128256, 4) == 3 * 4096 * 128256 * 4
    assert bench.percent_of_copy(4096, 128256, 2, 2 * 0.74e-3, 4.26e12) == pytest.approx(
        50.0, rel=2e-3)
    assert [bench.itemsize(d) for d in ("float32", "bfloat16", "float64")] == [4, 2, 8]


def test_table_and_ratios(bench):
    T = bench.Timing
    rows = [T((4096, 128256), "float32", "js", "divkit", 2.0, 0.0),
            T((4096, 128256), "float32", "js", "Liger", 10.6, 5900.0),
            T((4096, 128256), "float32", "js", "torch.compile", None, note="time budget"),
            T((4096, 128256), "float32", "kl", "divkit", 3.0, 0.0),
            T((4096, 128256), "float32", "kl", "torch.compile", 4.89, 0.0)]
    table = bench.timing_table(rows, 4.26e12)
    lines = table.splitlines()
    assert lines[0] == "| B×V, dtype | divergence | divkit | Liger | torch.compile |"
    assert lines[2].startswith("| 4096×128256 float32 | js | 2.000 ms (74 %), +0 MiB | 10.600 ms (14 %)")
    assert lines[2].endswith("| skipped: time budget |")
    assert lines[3].endswith("| 3.000 ms (49 %), +0 MiB | — | 4.890 ms (30 %), +0 MiB |")
    assert bench.ratios(rows) == [
        "4096×128256 float32 js: Liger / divkit = 5.30× (bar 4.0×: met)",
        "4096×128256 float32 kl: torch.compile / divkit = 1.63× (bar 2.0×: NOT met)"]


def test_budget_and_arguments(bench, monkeypatch, tmp_path):
    b = bench.Budget(10.0)
    assert 0 < b.begin("check", 0.3) <= 3.0
    assert b.left("check") <= 3.0 and b.left("timing") <= 10.0
    b.start = time.monotonic() - 11.0
    assert b.left("timing") < 0
    monkeypatch.setenv("OUT", str(tmp_path))
    args = bench.parse_args(["--quick"])
    assert args.quick and args.out == str(tmp_path / "gpu_divergence.md") and args.budget_s == 280.0
    assert sum(bench.SHARES.values()) <= 0.9


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed here")
def test_main_without_a_device_says_so(bench, capsys):
    assert bench.main(["--budget-s", "1"]) == 2
    assert "needs cupy and torch" in capsys.readouterr().out
