"""``import numeric`` must not import cupy or torch (a subprocess sees a clean interpreter)."""

import subprocess
import sys


def _loaded_after(code: str) -> str:
    code += (
        "\nbad = sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    return out.stdout.strip()


def test_import_numeric_imports_neither_cupy_nor_torch():
    code = (
        "import sys, numeric, numpy as np\n"
        "numeric.divergence_from_logits('js', np.zeros((1, 3)), np.ones((1, 3)))\n"
        "assert 'numeric._cupy' not in sys.modules and 'numeric.torch' not in sys.modules\n"
    )
    loaded = _loaded_after(code)
    assert loaded == "", f"imported GPU modules: {loaded}"


def test_gpu_modules_of_numeric_import_without_cupy_or_torch():
    # numeric._cupy and numeric.torch import cupy / torch only when they are used
    loaded = _loaded_after("import sys, numeric._cupy, numeric.torch, numeric._backend as b\n"
                           "b.uses_cupy(type('ndarray', (), {'__module__': 'cupy'})())")
    assert loaded == "", f"imported GPU modules: {loaded}"


def test_missing_cupy_backend_names_the_extras():
    import importlib.util

    import pytest

    from numeric import _backend

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("cupy is installed here")
    with pytest.raises(ImportError, match="cuda12.*cuda13"):
        _backend.require("cupy")
