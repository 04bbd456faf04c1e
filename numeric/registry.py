"""The operation table of :mod:`numeric`: each public operation, its backends, its options.

One row per public operation names, in order of preference, the backends that implement it
and where each implementation lives (``"module:function"``, imported on first use, so that
``import numeric`` never imports cupy or torch). The input arrays pick the backend, array-API
style: the first backend of the row that accepts the arrays' library and is available on
this machine (a C compiler for ``c``) runs the call; nothing is chosen by a global switch.
The same table

- drives dispatch (:func:`select`), after the options were validated once by the shared
  rules of :data:`OPTION_RULES` (:func:`check_options`);
- writes the backend column of ``docs/api.md`` (:func:`markdown`, a test holds it equal);
- parametrises the tests (:func:`operations`, :func:`implementations`).

A new backend is one :class:`Backend` (:func:`register_backend`) and one implementation per
operation it runs (:func:`register_implementation`); a new operation is one decorator.

>>> [b.name for b in backends("divergence")]
['cupy-host', 'host']
>>> import numpy as np
>>> select("divergence", np.ones(3), np.ones(3)).backend
'host'
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from numeric import _backend
from numeric._reduction import REDUCTIONS, check_reduction, check_return_grad

__all__ = [
    "Backend",
    "Operation",
    "Selection",
    "REDUCTIONS",
    "OPTION_RULES",
    "backends",
    "check_options",
    "dispatch",
    "implementations",
    "markdown",
    "operation",
    "operations",
    "register_backend",
    "register_implementation",
    "unregister_backend",
    "select",
]

@dataclass(frozen=True)
class Backend:
    """A way to run operations: which inputs it takes and whether this machine has it.

    ``accepts(*arrays)`` looks only at the arrays' types (no import of their library);
    ``available()`` may be costly once (finding a C compiler) and is cached by the caller.
    """

    name: str
    description: str
    accepts: Callable[..., bool]
    available: Callable[[], bool] = lambda: True
    #: the implementation runs the whole operation around another backend (cupy arrays
    #: copied to the host and back): it is called as ``impl(operation, *args, **kwargs)``
    wraps_operation: bool = False


@dataclass(frozen=True)
class Operation:
    """A public operation: its function, options with defaults, backends in preference order."""

    name: str
    function: Callable
    options: Mapping[str, object]
    backends: tuple[str, ...]
    implementations: dict = field(default_factory=dict)  # backend -> "module:function"
    takes_f: bool = False


@dataclass(frozen=True)
class Selection:
    """The backend :func:`select` picked and its implementation (``None``: the public
    function's own array-API body runs)."""

    backend: str
    run: Callable | None


def _numpy_like(x) -> bool:
    if x is None or isinstance(x, (list, tuple, numbers.Number)):
        return True
    module = getattr(type(x), "__module__", "") or ""
    return module == "numpy" or module.startswith("numpy.")


def _all_numpy(*arrays) -> bool:
    return all(_numpy_like(x) for x in arrays)


def _array_api(*arrays) -> bool:
    try:
        _backend.namespace(*arrays)
    except TypeError:
        return False
    return True


_BACKENDS: dict[str, Backend] = {}
_AVAILABLE: dict[str, bool] = {}
_OPERATIONS: dict[str, Operation] = {}


def register_backend(backend: Backend, *, replace: bool = False) -> Backend:
    """Add ``backend`` to the table (``replace=True`` to redefine one of the same name)."""
    if backend.name in _BACKENDS and not replace:
        raise ValueError(f"backend {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend
    _AVAILABLE.pop(backend.name, None)
    return backend


register_backend(Backend("cupy", "native CUDA kernel through cupy, on the arrays' device",
                         _backend.uses_cupy))
register_backend(Backend("cupy-host", "cupy arrays computed by the CPU kernels and copied back",
                         _backend.uses_cupy, wraps_operation=True))
register_backend(Backend("host", "the C kernel compiled for this CPU on first use (cached on "
                         "disk); numpy without a compiler or with DIVKIT_NO_CC=1", _all_numpy))
register_backend(Backend("numpy", "numpy", _all_numpy))
register_backend(Backend("array-api", "any array-API library (numpy, cupy, torch, ...)",
                         _array_api))


def unregister_backend(name: str) -> None:
    """Remove the backend ``name`` and its implementations (the reverse of
    :func:`register_backend` and :func:`register_implementation`)."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}")
    del _BACKENDS[name]
    _AVAILABLE.pop(name, None)
    for op, o in list(_OPERATIONS.items()):
        if name in o.implementations:
            impls = {b: t for b, t in o.implementations.items() if b != name}
            _OPERATIONS[op] = Operation(o.name, o.function, o.options,
                                        tuple(b for b in o.backends if b != name), impls,
                                        o.takes_f)


def _available(name: str) -> bool:
    if name not in _AVAILABLE:
        _AVAILABLE[name] = bool(_BACKENDS[name].available())
    return _AVAILABLE[name]


def operation(*, backends: Mapping[str, str | None], name: str | None = None):
    """Register the decorated public function as an operation run by ``backends``
    (``{backend: "module:function" or None}``, in preference order; ``None`` means the
    function's own body, written against the array API, runs that backend). Its options
    and their defaults are read from its keyword-only parameters."""

    def deco(fn):
        op_name = name or fn.__name__
        unknown = [b for b in backends if b not in _BACKENDS]
        if unknown:
            raise ValueError(f"{op_name}: unknown backend(s) {unknown}; known: {list(_BACKENDS)}")
        sig = inspect.signature(fn)
        options = {k: p.default for k, p in sig.parameters.items()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}
        positional = [k for k, p in sig.parameters.items()
                      if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        _OPERATIONS[op_name] = Operation(op_name, fn, MappingProxyType(options),
                                         tuple(backends), dict(backends),
                                         takes_f=bool(positional) and positional[0] == "f")
        return fn

    return deco


def register_implementation(op: str, backend: str, target, *, first: bool = False) -> None:
    """Let ``backend`` run ``op`` through ``target`` (``"module:function"`` or a callable with
    the operation's signature); ``first=True`` puts it ahead of the operation's other
    backends."""
    o = _operation(op)
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; register it first")
    order = [b for b in o.backends if b != backend]
    order = [backend, *order] if first else [*order, backend]
    impls = {**o.implementations, backend: target}
    _OPERATIONS[op] = Operation(o.name, o.function, o.options, tuple(order), impls, o.takes_f)


def _operation(name: str) -> Operation:
    try:
        return _OPERATIONS[name]
    except KeyError:
        raise ValueError(f"unknown operation {name!r}; known: {sorted(_OPERATIONS)}") from None


def operations() -> tuple[Operation, ...]:
    """Every registered operation, in registration order."""
    _load()
    return tuple(_OPERATIONS.values())


def backends(op: str) -> tuple[Backend, ...]:
    """The backends of ``op`` in preference order."""
    _load()
    return tuple(_BACKENDS[b] for b in _operation(op).backends)


def _resolve(target) -> Callable | None:
    if target is None or callable(target):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def implementations(op: str, *, available_only: bool = True) -> dict[str, Callable | None]:
    """``{backend: implementation}`` of ``op`` (those this machine has, unless told)."""
    o = _operation(op)
    return {b: _resolve(t) for b, t in o.implementations.items()
            if not available_only or _available(b)}


def select(op: str, *arrays, exclude: tuple[str, ...] = ()) -> Selection:
    """The first backend of ``op`` that accepts ``arrays`` and is available here.

    Raises
    ------
    TypeError
        When no backend of ``op`` takes arrays of these libraries (the message names them
        and the backends, with the extra that provides cupy).
    """
    o = _operation(op)
    for b in o.backends:
        if b in exclude or not _BACKENDS[b].accepts(*arrays):
            continue
        if _available(b):
            return Selection(b, _resolve(o.implementations[b]))
    kinds = sorted({type(x).__module__.split(".")[0] + "." + type(x).__name__
                    for x in arrays if x is not None})
    raise TypeError(f"{op}: no backend takes inputs of type(s) {', '.join(kinds)}; "
                    f"its backends are {', '.join(o.backends)} (cupy arrays need divkit's "
                    "'cuda12' or 'cuda13' extra)")


def dispatch(op: str, *arrays) -> Callable:
    """The callable that runs ``op`` on ``arrays`` (same signature as the public function):
    the implementation of the backend :func:`select` picks. A public function is
    ``check_options(...)`` then ``return dispatch(name, *arrays)(*args, **options)``."""
    sel = select(op, *arrays)
    if sel.run is None:
        raise TypeError(f"{op}: the {sel.backend} backend is the public function's own body")
    if _BACKENDS[sel.backend].wraps_operation:
        fn = _operation(op).function
        return lambda *args, **kwargs: sel.run(fn, *args, **kwargs)
    return sel.run


# ------------------------------------------------------------------------- options
def _reduction(name, v):
    check_reduction(v)


def _flag(name, v):
    if name == "return_grad":
        check_return_grad(v)
    elif not isinstance(v, bool):
        raise TypeError(f"{name} must be True or False, got {v!r}")


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


def _params(name, v):
    if v is None:
        return
    if not isinstance(v, Mapping):
        raise TypeError(f"{name} must be a dict of parameter values, got {type(v).__name__}")
    for k, x in v.items():
        if isinstance(x, bool):
            raise TypeError(f"{name}[{k!r}] must be a real number, got {x!r} (a bool)")
        if not isinstance(x, (numbers.Real, str)) and type(x).__module__ != "sympy.core.numbers":
            raise TypeError(f"{name}[{k!r}] must be a real number, got {x!r}")
        if isinstance(x, numbers.Real) and not math.isfinite(x):
            raise ValueError(f"{name}[{k!r}] must be finite, got {x!r}")


#: The rules every operation's options share, by option name: validated once, before
#: dispatch, so every backend sees checked values.
OPTION_RULES: Mapping[str, Callable] = MappingProxyType({
    "reduction": _reduction,
    "return_grad": _flag,
    "teacher_grad": _flag,
    "temperature": _positive,
    "params": _params,
})


def check_options(op: str, **given) -> None:
    """Validate ``given`` options of ``op`` by :data:`OPTION_RULES` (unknown names refused)."""
    o = _operation(op)
    for k, v in given.items():
        if k not in o.options:
            raise TypeError(f"{op}() got an unexpected option {k!r}")
        rule = OPTION_RULES.get(k)
        if rule is not None:
            rule(k, v)


# ------------------------------------------------------------------------- docs
def markdown() -> str:
    """The backend table of docs/api.md: operation, backends in preference order, options
    (required ones without a default)."""
    lines = ["| operation | backends (in preference order) | options (defaults) |",
             "|---|---|---|"]
    for o in operations():
        opts = ", ".join(f"`{k}`" if v is inspect.Parameter.empty else f"`{k}={v!r}`"
                         for k, v in o.options.items())
        lines.append(f"| `numeric.{o.name}` | {', '.join(o.backends)} | {opts} |")
    lines += ["", "| backend | what runs |", "|---|---|"]
    lines += [f"| `{b.name}` | {b.description} |" for b in _BACKENDS.values()]
    return "\n".join(lines) + "\n"


def _load() -> None:
    """Import the modules whose public functions register themselves."""
    importlib.import_module("numeric")
