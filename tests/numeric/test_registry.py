"""numeric.registry: every public operation is in the table, the arrays pick the backend,
options are validated once, and a new target (a printer plus a backend) is one table row."""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import pytest

import numeric
from numeric import codegen, registry
from numeric._forms import ELL, Q, forms


def _public_functions():
    return [n for n in numeric.__all__
            if inspect.isfunction(getattr(numeric, n)) and n != "codegen"]


def test_every_public_function_is_a_registered_operation():
    ops = {o.name: o for o in registry.operations()}
    assert set(_public_functions()) == set(ops)
    for name, o in ops.items():
        assert o.function is getattr(numeric, name)
        sig = inspect.signature(o.function)
        assert dict(o.options) == {k: p.default for k, p in sig.parameters.items()
                                   if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert o.backends and all(b in {x.name for x in registry.backends(name)}
                                  for b in o.backends)


def test_every_operation_that_takes_f_takes_params():
    for o in registry.operations():
        if o.takes_f:
            assert "params" in o.options, o.name


def test_one_reduction_vocabulary_and_default():
    for o in registry.operations():
        if "reduction" in o.options:
            assert o.options["reduction"] == "mean", o.name
            with pytest.raises(ValueError, match="reduction must be one of"):
                registry.check_options(o.name, reduction="batch_mean")
        if "return_grad" in o.options:
            with pytest.raises(TypeError, match="return_grad"):
                registry.check_options(o.name, return_grad="yes")


class _FakeCupyArray:
    """Stands in for a cupy array by its type's module (cupy is never imported here)."""


_FakeCupyArray.__module__ = "cupy._core.core"


@pytest.mark.parametrize("name", [o.name for o in registry.operations()])
def test_the_arrays_pick_the_backend(name):
    o = next(x for x in registry.operations() if x.name == name)
    sel = registry.select(name, np.zeros(3), np.zeros(3))
    assert sel.backend in ("host", "numpy", "array-api")
    if any(b.startswith("cupy") for b in o.backends):
        assert registry.select(name, _FakeCupyArray()).backend.startswith("cupy")
    elif "array-api" not in o.backends:
        with pytest.raises(TypeError, match="no backend takes"):
            registry.select(name, _FakeCupyArray())


# ------------------------------------------------------------------- a toy target
class ToyArray(np.ndarray):
    """The arrays of the toy backend: numpy memory, its own type."""


def _toy_emit(prog, name, dtype):
    """The toy printer: numpy text, labelled as the toy target's."""
    return "# toy target\n" + codegen.TARGETS["numpy"](prog, name, dtype)


def _toy_divergence(f, p, q, *, axis=-1, params=None):
    """D_f(P||Q) = sum q F(p/q) + f'(1) sum (p - q) with F's lo form printed by the toy
    target (valid at every ratio for these moderate rows)."""
    fm = forms(f, **(params or {}))
    ff = fm.family_forms
    text = codegen.source(ff.loss.lo, target="toy", name="toy_loss", args=[ELL, Q, *ff.theta])
    assert text.startswith("# toy target")
    ns = {}
    exec(compile(text, "toy_loss.py", "exec"), ns)
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    terms = ns["toy_loss"](np.log(p / q), q, *fm.theta, xp=np)
    return np.sum(terms, axis=axis) + fm.df_at_one * np.sum(p - q, axis=axis)


@contextlib.contextmanager
def toy_target():
    codegen.register_target("toy", _toy_emit)
    registry.register_backend(registry.Backend(
        "toy", "toy arrays through the toy printer",
        lambda *arrays: any(isinstance(x, ToyArray) for x in arrays)))
    registry.register_implementation("divergence", "toy", _toy_divergence, first=True)
    try:
        yield
    finally:
        registry.unregister_backend("toy")
        codegen.unregister_target("toy")


def test_a_toy_target_is_picked_by_the_registry():
    with toy_target():
        _check_toy()
    # gone again: the host backend takes the same arrays, numpy-typed or not
    assert "toy" not in codegen.TARGETS
    assert all(b.name != "toy" for b in registry.backends("divergence"))
    p = np.array([0.2, 0.3, 0.5]).view(ToyArray)
    assert registry.select("divergence", np.asarray(p), np.asarray(p)).backend == "host"


def _check_toy():
    p = np.array([0.2, 0.3, 0.5])
    q = np.array([0.4, 0.4, 0.2])
    assert registry.select("divergence", p.view(ToyArray), q.view(ToyArray)).backend == "toy"
    assert registry.select("divergence", p, q).backend == "host"
    got = numeric.divergence("kl", p.view(ToyArray), q.view(ToyArray))
    want = float(np.sum(p * np.log(p / q)))          # KL(P||Q) by hand
    assert abs(float(got) - want) <= 1e-15 * abs(want)
    got_js = numeric.divergence("js", p.view(ToyArray), q.view(ToyArray), params={"beta": 0.3})
    m = 0.3 * p + 0.7 * q
    want_js = 0.3 * np.sum(p * np.log(p / m)) + 0.7 * np.sum(q * np.log(q / m))
    assert abs(float(got_js) - want_js) <= 1e-14 * want_js

