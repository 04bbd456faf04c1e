"""``import numeric`` must not import cupy or torch (a subprocess sees a clean interpreter)."""

import subprocess
import sys


def test_import_numeric_imports_neither_cupy_nor_torch():
    code = (
        "import sys, numeric, numpy as np\n"
        "numeric.divergence_from_logits('js', np.zeros((1, 3)), np.ones((1, 3)))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "", f"imported GPU modules: {out.stdout.strip()}"


def test_missing_cupy_backend_names_the_extras():
    import importlib.util

    import pytest

    from numeric import _backend

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("cupy is installed here")
    with pytest.raises(ImportError, match="cuda12.*cuda13"):
        _backend.require("cupy")
