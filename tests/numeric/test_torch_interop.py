"""numeric.torch without torch: it imports, and using it names what is missing (a subprocess
in which ``import torch`` fails, so this runs whether or not torch is installed)."""

from __future__ import annotations

import subprocess
import sys


def test_numeric_torch_imports_without_torch_and_asks_for_it_on_use():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # import torch raises ImportError\n"
        "import numpy as np\n"
        "import numeric.torch as nt\n"
        "assert sorted(nt.__all__) == ['DivergenceLoss', 'divergence_loss', 'divkit_loss', "
        "'from_cupy', 'register', 'to_cupy']\n"
        "x = np.zeros((2, 3))\n"
        "for call in (lambda: nt.divergence_loss(x, x), lambda: nt.from_cupy(x), "
        "lambda: nt.DivergenceLoss, lambda: nt.register('kl')):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as exc:\n"
        "        assert 'numeric.torch needs PyTorch' in str(exc) and 'divkit[torch]' in str(exc)\n"
        "    else:\n"
        "        raise AssertionError('no ImportError')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
