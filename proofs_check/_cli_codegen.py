"""``divkit codegen``: write the generated kernels of an f-divergence as source files.

Usage::

    divkit codegen js --target cuda                  # CUDA row kernel + README, float32
    divkit codegen js --target c --param beta=0.3 --dtype float64 --out js_c
    divkit codegen --f "(sqrt(u)-1)**2" --target c --check
    divkit codegen --f "(u**a - 1 - a*(u - 1))/(a*(a - 1))" --params a=1/2 --target numpy --json
    divkit codegen alpha --param alpha=1/3 --target cuda --check    # nvcc when present

Writes self-contained sources of the fused from-logits row kernel (divergence and both
gradients from two logit rows) and of the probability kernel, with a README.md that gives
the C signature of each entry point, the layout of the ``cst`` constants array and a
launch example. One source serves every parameter value of a family: the values come at
run time in ``cst`` (listed, for the given ``--param`` values, in the README and in
``--json``). ``--f`` and ``--param`` values go through the whitelist parser
(theory.parsing); nothing typed here is handed to sympify or eval.

``--check`` compiles what was written — C with ``cc -Wall -Werror``, CUDA with ``nvcc -c``
when nvcc is found (else it says so) — and compares one random row of the compiled C
kernels (row kernel: loss and both gradients; probability kernel: the divergence) and of
the numpy forms with numeric's own path in float64, to 4·sqrt(eps) of the dtype. The exit
status is 0 when every check passes, 1 when one fails, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run", "check_files"]

_TARGETS = ("cuda", "c", "numpy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``divkit codegen``."""
    parser.add_argument("name", nargs="?", help="catalog name (see `divkit derive --list`)")
    parser.add_argument("--f", dest="expr", metavar="EXPR", help="a generator f(u) as text")
    parser.add_argument("--param", "--params", dest="param", action="append", default=[],
                        metavar="K=V", help="parameter value(s), e.g. beta=0.3 or a=1/2,b=2 "
                        "(repeatable)")  # fmt: skip
    parser.add_argument("--target", choices=_TARGETS, default="cuda",
                        help="cuda (default), c or numpy")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="element type of the row kernel (default float32)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default ./divkit_<name>_<target>)")
    parser.add_argument("--check", action="store_true",
                        help="compile the files and compare one row with numeric")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object: files, constants (and checks)")


def _parse_params(items: list[str]) -> dict:
    from theory.parsing import parse_number

    out: dict = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            key, eq, val = part.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier():
                raise ValueError(f"--param expects K=V, got {part!r}")
            if key in out:
                raise ValueError(f"--param {key} given twice")
            out[key] = parse_number(val.strip())
    return out


def _subject(args):
    """(f for numeric, params for numeric, label)."""
    from theory import fdiv

    params = _parse_params(args.param)
    if args.expr is not None and args.name is not None:
        raise ValueError("give either a catalog NAME or --f EXPR, not both")
    if args.expr is not None:
        d = fdiv.FDivergence.from_string(args.expr, **params)
        return d, None, "f"
    if args.name is None:
        raise ValueError("give a catalog NAME or --f EXPR (see `divkit derive --list`)")
    if args.name not in fdiv.names():
        fdiv.get(args.name)  # raises with the closest names
    values = {k: float(v) for k, v in params.items()}
    return args.name, (values or None), args.name


def run(args) -> int:
    """Run ``divkit codegen``; returns the exit status."""
    from numeric.codegen import kernel_constants, kernel_files

    f, params, label = _subject(args)
    files = kernel_files(f, target=args.target, dtype=args.dtype, params=params)
    layout, cst = kernel_constants(f, params=params)
    out = Path(args.out or f"divkit_{label}_{args.target}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    checks = check_files(out, list(files), f, params, args.target, args.dtype) if args.check else []
    ok = all(c["ok"] is not False for c in checks)
    if args.json:
        doc = {
            "f": label if isinstance(f, str) else str(f.f),
            "target": args.target,
            "dtype": args.dtype,
            "out": str(out),
            "files": [str(p) for p in written],
            # JSON has no inf/nan: those constants are written as the strings "inf", "-inf", "nan"
            "constants": {"layout": layout, "values": [_json_float(x) for x in cst]},
            "checks": checks,
            "ok": ok,
        }
        print(json.dumps(doc, indent=1, allow_nan=False, default=str))
        return 0 if ok else 1
    print(f"wrote {len(written)} files to {out}/:")
    for p in written:
        print(f"  {p}")
    for c in checks:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[c["ok"]]
        print(f"{mark} {c['what']}: {c['detail']}")
    if checks:
        print("every check passed" if ok else "a check failed")
    return 0 if ok else 1


def _json_float(x):
    import math

    x = float(x)
    return x if math.isfinite(x) else str(x)


# --------------------------------------------------------------------------- checks
#: The flags the written C is checked with: the sources' own dialect, warnings as errors.
C_CHECK_FLAGS = ("-std=c99", "-O2", "-fopenmp-simd", "-fno-fast-math", "-ffp-contract=off",
                 "-Wall", "-Werror")


def _compile_c(cc: str, source: Path, out: Path) -> tuple[bool, str]:
    cmd = [cc, *C_CHECK_FLAGS, "-c", "-o", str(out), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-2000:]


def _rel_err(got, ref, scale=None) -> float:
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    den = np.max(np.abs(ref)) if scale is None else scale
    return float(np.max(np.abs(got - ref)) / den) if den > 0 else float(np.max(np.abs(got)))


def _row(dtype, v=37, seed=20261206):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = (1.5 * rng.standard_normal((1, v))).astype(dtype)
    s = (1.5 * rng.standard_normal((1, v))).astype(dtype)
    return t, s


def check_files(out: Path, names: list[str], f, params, target: str, dtype: str) -> list[dict]:
    """Compile the written files and compare one row with numeric (see the module)."""

    from numeric.tolerances import backend_rtol

    rtol = backend_rtol(dtype)
    paths = [out / n for n in names]
    checks: list[dict] = []
    c_files = [p for p in paths if p.suffix == ".c"]
    cu_files = [p for p in paths if p.suffix == ".cu"]
    py_files = [p for p in paths if p.suffix == ".py"]
    tmp = Path(tempfile.mkdtemp(prefix="divkit-codegen-"))
    try:
        if c_files:
            from numeric.codegen import find_cc

            cc = find_cc()
            if cc is None:
                checks.append({"what": "cc -Wall -Werror", "ok": None,
                               "detail": "no C compiler found ($CC, cc, gcc, clang)"})
            else:
                for p in c_files:
                    ok, msg = _compile_c(cc, p, tmp / (p.stem + ".o"))
                    checks.append({"what": f"cc -Wall -Werror {p.name}", "ok": ok,
                                   "detail": "compiled" if ok else msg})
                if all(c["ok"] for c in checks):
                    checks += _run_c_rows(out, names, f, params, dtype, rtol)
        for p in cu_files:
            from numeric.codegen import find_nvcc

            nvcc = find_nvcc()
            if nvcc is None:
                checks.append({"what": f"nvcc -c {p.name}", "ok": None,
                               "detail": "nvcc not found (set $NVCC); not compiled"})
                continue
            cmd = [nvcc, "-c", "-std=c++17", "-Werror", "all-warnings", "-o",
                   str(tmp / (p.stem + ".o")), str(p)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            checks.append({"what": f"nvcc -c {p.name}", "ok": proc.returncode == 0,
                           "detail": "compiled" if proc.returncode == 0
                           else (proc.stderr or proc.stdout).strip()[-2000:]})
        if cu_files:
            checks.append({"what": "CUDA row vs numpy", "ok": None,
                           "detail": "needs a GPU; the C target runs the same row body on "
                           "the host (divkit codegen ... --target c --check)"})
        for p in py_files:
            checks += _run_numpy(p, f, params, rtol)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return checks


def _reference(f, params, t, s):
    import numpy as np

    import numeric

    t64, s64 = t.astype(np.float64), s.astype(np.float64)
    loss, gs, gt = numeric.divergence_from_logits(f, t64, s64, reduction="none",
                                                  return_grad=True, teacher_grad=True,
                                                  params=params)
    return np.asarray(loss), np.asarray(gs), np.asarray(gt)


def _run_c_rows(out: Path, names: list[str], f, params, dtype: str, rtol: float) -> list:
    """The written C files compiled with this machine's kernel flags and called through
    numeric's host launcher: one random logit row (fused loss and both gradients) and one
    probability row, against numeric's own evaluation."""
    import numpy as np

    import numeric
    from numeric import _cpu
    from numeric._forms import forms
    from numeric.codegen import kernel_constants
    from numeric.codegen._files import family_name

    bound = forms(f, **(params or {}))
    files = {n: (out / n).read_text() for n in names if (out / n).suffix in (".c", ".h")}
    kern = _cpu.kernel_from_files(bound, files, family_name(f, bound))
    _, cst = kernel_constants(f, params=params)
    cst = np.ascontiguousarray(cst, dtype=np.float64)
    np_dtype = np.dtype(dtype)
    t, s = _row(np_dtype)
    ref_loss, ref_gs, ref_gt = _reference(f, params, t, s)
    gs, gt = np.empty_like(t), np.empty_like(t)
    loss, status = kern.from_logits(cst, t, s, temperature=1.0, grad_scale=1.0, gs=gs, gt=gt)
    errs = {"loss": _rel_err(loss, ref_loss), "grad_student": _rel_err(gs, ref_gs),
            "grad_teacher": _rel_err(gt, ref_gt)}
    worst = max(errs.values())
    checks = [{"what": f"row kernel {kern.family} ({dtype} logits) vs numpy (1 row, "
               f"V={t.shape[1]})", "ok": bool(worst <= rtol and status[0] & 1),
               "detail": ", ".join(f"{k} rel. error {e:.2e}" for k, e in errs.items())
               + f" (allowed {rtol:.2e}), status {int(status[0])}"}]
    rng = np.random.default_rng(20261207)
    v = 29
    p = rng.dirichlet(np.full(v, 0.7))[None, :].astype(np_dtype)
    q = rng.dirichlet(np.full(v, 0.7))[None, :].astype(np_dtype)
    std_sum, diff, _, pstatus = kern.prob_rows(cst, p, q)
    got = std_sum[0] + bound.df_at_one * diff[0]
    ref = float(numeric.divergence(f, p[0].astype(np.float64), q[0].astype(np.float64),
                                   params=params))
    err = abs(got - ref) / abs(ref) if ref else abs(got)
    checks.append({"what": f"probability kernel {kern.family} vs numeric.divergence (1 row, "
                   f"V={v})", "ok": bool(pstatus[0] == 1 and err <= rtol),
                   "detail": f"rel. error {err:.2e} (allowed {rtol:.2e}), status "
                   f"{int(pstatus[0])}"})
    return checks


def _run_numpy(path: Path, f, params, rtol) -> list:
    import importlib.util

    import numpy as np

    import numeric
    from numeric._forms import forms

    spec = importlib.util.spec_from_file_location(f"_divkit_codegen_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        return [{"what": f"import {path.name}", "ok": False, "detail": f"{type(exc).__name__}: {exc}"}]
    checks = [{"what": f"import {path.name}", "ok": True, "detail": "imported"}]
    fns = [getattr(mod, n) for n in dir(mod) if n.endswith("_loss_lo") and callable(getattr(mod, n))]
    if not fns:
        return checks
    rng = np.random.default_rng(20261208)
    v = 29
    p = rng.dirichlet(np.full(v, 2.0))
    q = rng.dirichlet(np.full(v, 2.0))
    theta = forms(f, **(params or {})).theta
    terms = fns[0](np.log(p / q), q, *theta, xp=np)
    got = float(np.sum(terms))
    ref = float(numeric.divergence(f, p, q, params=params))
    err = abs(got - ref) / abs(ref) if ref else abs(got)
    checks.append({"what": f"{fns[0].__name__} summed over a row vs numeric.divergence",
                   "ok": bool(err <= rtol), "detail": f"rel. error {err:.2e} (allowed {rtol:.2e})"})
    return checks


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser(prog="divkit codegen")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
