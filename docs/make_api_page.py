"""Write docs/api.md from the modules' ``__all__`` (run after changing a public name).

    python docs/make_api_page.py > docs/api.md

tests/test_repository.py holds the committed page equal to the modules' ``__all__``.
"""

import importlib
import inspect

MODULES = [
    "theory", "theory.fdiv", "theory.expfam", "theory.asymptotics", "theory.parsing",
    "theory.alignment",
    "theory.cauchy_schwarz",
    "numeric", "numeric.codegen", "numeric.registry", "numeric.torch",
    "proofs_check", "proofs_check.reference", "proofs_check.reference.nash", "proofs_check.catalog",
    "proofs_check.rates", "proofs_check.nash_rates", "proofs_check.bounds",
]
SYMBOLS = {
    "u": "the ratio symbol u = p/q (positive)",
    "t": "the conjugate variable t (real)",
    "n": "the sample-size symbol n (positive)",
    "delta": "the mean-difference symbol of the Gaussian log-overlap (real)",
    "s": "the summed-variance symbol of the Gaussian log-overlap (positive)",
    "DEFAULT_FUNCTIONS": "the functions the whitelist parser allows by default",
}


def summary(name, obj):
    if name in SYMBOLS:
        return SYMBOLS[name]
    doc = inspect.getdoc(obj) if (inspect.ismodule(obj) or inspect.isclass(obj)
                                  or inspect.isfunction(obj)) else None
    if not doc:
        return f"`{type(obj).__name__}` constant"
    first = doc.split("\n\n")[0]
    return " ".join(first.split())


def page() -> str:
    """The whole page as text."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        _print_page()
    return buf.getvalue()


def main():
    print(page(), end="")


def _print_page():
    from numeric import registry

    print("# Public API\n")
    print("The public names of each module are exactly its `__all__`; a test")
    print("(`tests/test_repository.py::test_api_page_lists_exactly_all`) holds this page equal to")
    print("them. Everything else (modules and names starting with `_`) is internal.")
    print("Regenerate with `python docs/make_api_page.py > docs/api.md`.\n")
    for m in MODULES:
        mod = importlib.import_module(m)
        print(f"## `{m}`\n")
        for name in mod.__all__:
            print(f"- `{name}` — {summary(name, getattr(mod, name))}")
        print()
        if m == "numeric":
            print("### Backends of the numeric operations\n")
            print("Generated from `numeric.registry` (the table that dispatches them): the input")
            print("arrays pick the first backend of the row that takes them.\n")
            print(registry.markdown())


if __name__ == "__main__":
    main()
