"""numeric.torch without torch: it imports, and using it names what is missing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
def test_numeric_torch_imports_and_asks_for_torch_on_use():
    import numeric.torch as nt

    x = np.zeros((2, 3))
    for call in (lambda: nt.divkit_loss(x, x), lambda: nt.from_cupy(x)):
        with pytest.raises(ImportError, match=r"numeric\.torch needs PyTorch"):
            call()
    assert sorted(nt.__all__) == ["divkit_loss", "from_cupy", "to_cupy"]
