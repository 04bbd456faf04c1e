"""Array-namespace dispatch: the input arrays decide the backend, never a global switch.

``namespace(*arrays)`` returns the array namespace of the inputs (through
``array_api_compat``); Python lists and scalars count as numpy. ``require("cupy")`` imports
cupy on demand and, when it is missing, raises an ``ImportError`` that names the extras
providing it. ``uses_cupy(*arrays)`` tells, from the arrays' types alone (no import), whether
the cupy route of :mod:`numeric._cupy` applies. Nothing here imports cupy or torch at import
time.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import numpy as np

__all__ = ["namespace", "is_numpy", "require", "require_cupy", "is_cupy_array", "uses_cupy",
           "EXTRAS"]

#: The optional-dependency extras that provide each GPU backend.
EXTRAS = {"cupy": ("cuda12", "cuda13")}


def namespace(*arrays):
    """The array namespace shared by ``arrays`` (numpy for lists, scalars and None).

    Raises
    ------
    TypeError
        If the arrays come from different libraries.
    """
    import array_api_compat

    real = [x for x in arrays if x is not None and not isinstance(x, (list, tuple, int, float))]
    if not real:
        return array_api_compat.array_namespace(np.empty(0))
    try:
        return array_api_compat.array_namespace(*real)
    except TypeError as exc:
        raise TypeError(f"arrays from different libraries cannot be mixed: {exc}") from None


def is_numpy(xp) -> bool:
    """Whether ``xp`` is numpy's namespace (or array_api_compat's numpy wrapper)."""
    import array_api_compat

    return array_api_compat.is_numpy_namespace(xp)


def _extras_hint(name: str) -> str:
    extras = EXTRAS.get(name)
    if not extras:
        return ""
    return (f"; install it with divkit's {' or '.join(repr(e) for e in extras)} extra "
            f"(pip install 'divkit[{extras[0]}]' for CUDA 12, 'divkit[{extras[1]}]' for CUDA 13)")


def require(name: str):
    """Import the backend module ``name``; a clear ``ImportError`` names the extra if absent
    or if it is installed but cannot load (e.g. CUDA libraries missing).

    >>> require("numpy").__name__
    'numpy'
    """
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    if importlib.util.find_spec(name) is None:
        raise ImportError(f"the {name!r} backend is not installed{_extras_hint(name)}")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"the {name!r} backend is installed but cannot load ({exc})"
                          f"{_extras_hint(name)}") from exc


def require_cupy():
    """cupy, for a cupy input (see :func:`require`)."""
    return require("cupy")


def is_cupy_array(x) -> bool:
    """Whether ``x`` is a cupy array, judged by its type's module (cupy is not imported).

    >>> import numpy as np
    >>> is_cupy_array(np.zeros(2)), is_cupy_array([1.0])
    (False, False)
    """
    module = getattr(type(x), "__module__", None) or ""
    return module == "cupy" or module.startswith("cupy.")


def uses_cupy(*arrays) -> bool:
    """Whether any of ``arrays`` is a cupy array: the public functions then take the cupy
    route (:mod:`numeric._cupy`)."""
    return any(is_cupy_array(x) for x in arrays)


def as_numpy_input(x, name: str):
    """``x`` as a numpy array; GPU arrays are refused with a message (no hidden copies).

    Raises
    ------
    TypeError
        For complex or non-numeric input (never truncated to its real part).
    ValueError
        For an empty array (no entries to compute with).
    """
    if not isinstance(x, np.ndarray):
        xp = namespace(x)
        if not is_numpy(xp):
            raise TypeError(
                f"{name}: the {xp.__name__} backend has no CPU kernels here; pass a numpy array "
                "(GPU kernels take cupy arrays when the 'cuda12'/'cuda13' extra is installed)"
            )
        x = np.asarray(x)
    return _checked_real(x, name)


def _checked_real(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` itself when it is a non-empty array of real numbers (bool, int or float)."""
    if x.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {x.dtype}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); give at least one entry")
    return x
