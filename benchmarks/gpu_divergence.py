"""GPU device check and benchmark: divkit's generated CUDA kernels (through cupy) vs peers.

One prepared run on a CUDA device (issue 12), in four parts, each bounded by a share of a
global time budget (default 280 s, so that the whole run, imports and a last torch.compile
included, ends within 6 minutes; a part that would overrun is skipped with a note):

a. **check** — the cupy route of ``numeric.divergence_from_logits`` against the numpy route,
   every catalog f, float32 / float64 (cupy arrays) and bfloat16 (torch tensors through
   ``numeric.torch``), odd shapes (V = 1, 31, 33, 1271, 128256; rows 1 and 7) with a
   dropped row, ``-inf`` logits and a temperature; tolerance ``4·sqrt(eps)`` of the kernel
   dtype (bfloat16 outputs: 4·2⁻⁸), gradient entries relative to the row's largest.
b. **accuracy** — the float32 JS (β = ½) student gradient on peaky rows (64 × 128256,
   logits ×12) against the float64 kernel on the same rounded inputs (relative L2 per row;
   bar ≤ 1e-5, the peers lose 1.1–1.3e-2); the generalized JS loss at β = 0, 1e-6,
   1 − 1e-6, 1 (continuity); no NaN on rows with −inf-masked entries and underflowing
   log-probabilities.
c. **timing** — forward + student gradient at 4096×128256 and 16384×32000, float32 and
   bfloat16, for kl, reverse_kl, js (β = ½), tv, alpha (α = ½): divkit (cupy kernels on
   DLPack views of torch tensors, ``reduction="batchmean"``) side by side with torch eager,
   torch.compile and Liger-Kernel (for KL and JSD, as measured in
   docs/benchmarks.md), each optional with a clear skip. Timer:
   ``triton.testing.do_bench`` (median, 25 ms warm-up, 200 ms of repeats) or CUDA events.
   Prints % of the device-to-device copy bandwidth measured in the same run (ideal bytes
   ``3·B·V·itemsize``) and the peak extra device memory beyond the inputs and the gradient
   (cupy allocates through torch's caching allocator during the run, so one peak counter
   sees both).
d. **report** — a markdown table (card, date, command, versions) to ``--out``
   (default ``$OUT/gpu_divergence.md`` when ``$OUT`` is set), ready for docs/benchmarks.md.

Usage (on the device, from the repository root)::

    python benchmarks/gpu_divergence.py [--out PATH] [--budget-s 280] [--quick]

Nothing here imports cupy, torch, triton or liger_kernel at import time; the pure-python
helpers (bytes, bandwidth, tables, budget) are tested on the CPU in
tests/test_gpu_benchmark_script.py.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Timing shapes (rows, V) and dtypes of the issue.
SHAPES = ((4096, 128256), (16384, 32000))
DTYPES = ("float32", "bfloat16")
#: divkit divergences timed: (label, catalog name, parameters).
TIMED = (("kl", "kl", {}), ("reverse_kl", "reverse_kl", {}), ("js", "js", {}),
         ("tv", "tv", {}), ("alpha(1/2)", "alpha", {}))
#: Peers per divergence label (only KL and JSD have peer implementations).
PEERS = {"kl": ("torch eager", "torch.compile", "Liger"),
         "js": ("torch eager", "torch.compile", "Liger")}
#: Check shapes: (rows, V).
CHECK_SHAPES = ((1, 1), (7, 31), (7, 33), (7, 1271), (1, 128256))
#: Shares of the budget: check, accuracy, timing (the rest is reserve for the report).
SHARES = {"check": 0.30, "accuracy": 0.10, "timing": 0.50}
#: Bars of the issue (acceptance), for the summary lines.
BARS = {"fp32_copy_bw": 65.0, "bf16_copy_bw": 50.0, "vs_compile_kl": 2.0, "vs_liger_js": 4.0,
        "peaky_js_grad": 1e-5}


def ideal_bytes(rows: int, v: int, itemsize: int) -> int:
    """Bytes the job must move at least: read teacher and student, write the gradient."""
    return 3 * rows * v * itemsize


def percent_of_copy(rows: int, v: int, itemsize: int, seconds: float, copy_bw: float) -> float:
    """``ideal bytes / time`` as a percentage of the copy bandwidth (bytes/s, read + write).

    >>> round(percent_of_copy(4096, 128256, 4, 1.48e-3, 4.26e12), 1)
    100.0
    """
    return 100.0 * ideal_bytes(rows, v, itemsize) / seconds / copy_bw


def itemsize(dtype: str) -> int:
    return {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}[dtype]


@dataclass
class Budget:
    """A global deadline with named shares; ``left(part)`` is what a part may still use."""

    total_s: float
    start: float = field(default_factory=time.monotonic)
    ends: dict = field(default_factory=dict)

    def begin(self, part: str, share: float) -> float:
        end = min(self.start + self.total_s, time.monotonic() + share * self.total_s)
        self.ends[part] = end
        return end - time.monotonic()

    def left(self, part: str) -> float:
        return self.ends.get(part, self.start + self.total_s) - time.monotonic()

    def spent(self) -> float:
        return time.monotonic() - self.start


@dataclass
class Timing:
    shape: tuple
    dtype: str
    label: str
    impl: str
    ms: float | None = None
    extra_mib: float | None = None
    note: str = ""


def timing_table(rows: list[Timing], copy_bw: float | None) -> str:
    """Markdown table: one line per (shape, dtype, divergence), one column per implementation.

    >>> t = [Timing((2, 3), "float32", "kl", "divkit", 1.0, 0.0),
    ...      Timing((2, 3), "float32", "kl", "Liger", None, note="not installed")]
    >>> print(timing_table(t, None))
    | B×V, dtype | divergence | divkit | Liger |
    |---|---|---|---|
    | 2×3 float32 | kl | 1.000 ms, +0 MiB | skipped: not installed |
    """
    impls = []
    for r in rows:
        if r.impl not in impls:
            impls.append(r.impl)
    keys = []
    for r in rows:
        k = (r.shape, r.dtype, r.label)
        if k not in keys:
            keys.append(k)
    lines = ["| B×V, dtype | divergence | " + " | ".join(impls) + " |",
             "|---" * (2 + len(impls)) + "|"]
    for shape, dtype, label in keys:
        cells = []
        for impl in impls:
            hit = [r for r in rows if (r.shape, r.dtype, r.label, r.impl) == (shape, dtype, label, impl)]
            cells.append(_cell(hit[0], copy_bw) if hit else "—")
        lines.append(f"| {shape[0]}×{shape[1]} {dtype} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(r: Timing, copy_bw: float | None) -> str:
    if r.ms is None:
        return f"skipped: {r.note}" if r.note else "skipped"
    text = f"{r.ms:.3f} ms"
    if copy_bw:
        pct = percent_of_copy(r.shape[0], r.shape[1], itemsize(r.dtype), r.ms * 1e-3, copy_bw)
        text += f" ({pct:.0f} %)"
    if r.extra_mib is not None:
        text += f", +{r.extra_mib:.0f} MiB"
    return text


def ratios(rows: list[Timing]) -> list[str]:
    """Summary lines: divkit against torch.compile (KL) and Liger (JSD), per shape and dtype.

    >>> t = [Timing((1, 1), "float32", "kl", "divkit", 1.0), Timing((1, 1), "float32", "kl",
    ...      "torch.compile", 2.5)]
    >>> ratios(t)
    ['1×1 float32 kl: torch.compile / divkit = 2.50× (bar 2.0×: met)']
    """
    out = []
    for r in rows:
        if r.impl != "divkit" or r.ms is None:
            continue
        for peer, label, bar in (("torch.compile", "kl", BARS["vs_compile_kl"]),
                                 ("Liger", "js", BARS["vs_liger_js"])):
            if r.label != label:
                continue
            hit = [p for p in rows if (p.shape, p.dtype, p.label, p.impl) == (r.shape, r.dtype, label, peer)
                   and p.ms is not None]
            if hit:
                x = hit[0].ms / r.ms
                out.append(f"{r.shape[0]}×{r.shape[1]} {r.dtype} {label}: {peer} / divkit = {x:.2f}× "
                           f"(bar {bar}×: {'met' if x >= bar else 'NOT met'})")
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", default=None, help="markdown report path (default $OUT/gpu_divergence.md)")
    ap.add_argument("--budget-s", type=float, default=280.0, help="global time budget in seconds")
    ap.add_argument("--quick", action="store_true", help="one f per check, one timing shape")
    args = ap.parse_args(argv)
    if args.out is None and os.environ.get("OUT"):
        args.out = str(Path(os.environ["OUT"]) / "gpu_divergence.md")
    return args


# --------------------------------------------------------------------------- device parts


def _log(msg: str) -> None:
    print(msg, flush=True)


def _use_torch_allocator(cp, torch):
    """cupy allocates through torch's caching allocator: one peak counter for both."""

    def alloc(size):
        buf = torch.empty(max(int(size), 1), dtype=torch.uint8, device="cuda")
        mem = cp.cuda.UnownedMemory(buf.data_ptr(), size, buf)
        return cp.cuda.MemoryPointer(mem, 0)

    cp.cuda.set_allocator(alloc)


def _bench(fn, torch):
    try:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=25, rep=200, return_mode="median"))
    except ImportError:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(3):
            fn()
        times = []
        for _ in range(20):
            start.record()
            fn()
            stop.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(stop))
        return sorted(times)[len(times) // 2]


def _copy_bandwidth(torch) -> float:
    """Device-to-device copy, bytes read + written per second (2 GiB buffer)."""
    n = 1 << 29
    a = torch.empty(n, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    ms = _bench(lambda: b.copy_(a), torch)
    return 2 * n * 4 / (ms * 1e-3)


def _peak_extra_mib(fn, torch, baseline_bytes: int) -> float:
    """Peak device memory of one call of ``fn`` beyond what was allocated before it and
    beyond ``baseline_bytes`` (the gradient it must return)."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del out
    return max(0, peak - before - baseline_bytes) / 2**20


def part_check(budget, cp, torch, names, quick):
    import numpy as np

    import numeric
    import numeric.torch as nt
    from numeric.tolerances import backend_rtol

    budget.begin("check", SHARES["check"])
    failures, done, skipped = [], 0, 0
    rng = np.random.default_rng(0)
    for name in names[:1] if quick else names:
        for rows, v in CHECK_SHAPES:
            if budget.left("check") <= 0:
                skipped += 1
                continue
            t = rng.standard_normal((rows, v)) * 3
            s = rng.standard_normal((rows, v)) * 3
            if v >= 4:
                t[:, 1] = -np.inf
                s[:, 2] = -np.inf
            mask = np.ones(rows, dtype=bool)
            mask[rows // 2] = rows == 1
            kw = dict(temperature=0.7, mask=mask, reduction="none", return_grad=True, teacher_grad=True)
            for dtype in ("float32", "float64", "bfloat16"):
                try:
                    if dtype == "bfloat16":
                        tt = torch.tensor(t, dtype=torch.bfloat16, device="cuda")
                        st = torch.tensor(s, dtype=torch.bfloat16, device="cuda")
                        th = tt.float().cpu().numpy()
                        sh = st.float().cpu().numpy()
                        loss, gs, gt = nt._compute(name, st, tt, temperature=0.7,
                                                   mask=torch.tensor(mask, device="cuda"),
                                                   reduction="none", teacher_grad=True)
                        got = [x.float().cpu().numpy() for x in (loss, gs, gt)]
                        want = numeric.divergence_from_logits(name, th, sh, **kw)
                        rtol = 4 * 2.0**-8
                    else:
                        th, sh = t.astype(dtype), s.astype(dtype)
                        out = numeric.divergence_from_logits(name, cp.asarray(th), cp.asarray(sh), **kw)
                        got = [cp.asnumpy(x) for x in out]
                        want = numeric.divergence_from_logits(name, th, sh, **kw)
                        rtol = backend_rtol(dtype)
                    _compare(got, want, rtol)
                    done += 1
                except Exception as exc:  # noqa: BLE001 - report every failure, keep going
                    failures.append(f"{name} {dtype} {rows}×{v}: {type(exc).__name__}: {exc}"[:400])
    _log(f"[check] {done} cases agree with numpy, {len(failures)} failures, "
         f"{skipped} shape(s) skipped for time")
    for line in failures:
        _log("  FAIL " + line)
    return done, failures, skipped


def _compare(got, want, rtol):
    import numpy as np

    from numeric.tolerances import assert_close

    assert_close(np.asarray(got[0], np.float64), np.asarray(want[0], np.float64), rtol=rtol,
                 atol=rtol * 1e-4)
    for g, w in zip(got[1:], want[1:], strict=True):
        w = np.asarray(w, np.float64)
        scale = np.where(np.isfinite(w), np.abs(w), 0).max(axis=-1, keepdims=True)
        scale[scale == 0] = 1.0
        assert_close(np.asarray(g, np.float64) / scale, w / scale, rtol=rtol, atol=rtol,
                     equal_nan=True)


def part_accuracy(budget, cp, torch):
    import numpy as np

    import numeric

    budget.begin("accuracy", SHARES["accuracy"])
    lines = []
    rng = np.random.default_rng(1)
    t = (rng.standard_normal((64, 128256)) * 12).astype(np.float32)
    s = (rng.standard_normal((64, 128256)) * 12).astype(np.float32)
    _, g32 = numeric.divergence_from_logits("js", cp.asarray(t), cp.asarray(s), return_grad=True,
                                            reduction="none")
    _, g64 = numeric.divergence_from_logits("js", cp.asarray(t, dtype=cp.float64),
                                            cp.asarray(s,
                                                       dtype=cp.float64), return_grad=True, reduction="none")
    g32, g64 = cp.asnumpy(g32).astype(np.float64), cp.asnumpy(g64)
    rel = np.linalg.norm(g32 - g64, axis=1) / np.linalg.norm(g64, axis=1)
    worst = float(rel.max())
    lines.append(f"peaky JS (64×128256, ×12) float32 student gradient: max relative L2 error "
                 f"{worst:.2e} vs the float64 kernel (bar {BARS['peaky_js_grad']:.0e}: "
                 f"{'met' if worst <= BARS['peaky_js_grad'] else 'NOT met'})")
    # generalized JS at and near the endpoints
    from theory import fdiv

    t8, s8 = cp.asarray(t[:8].astype(np.float64) / 12), cp.asarray(s[:8].astype(np.float64) / 12)
    vals = {}
    for beta in ("0", "1/1000000", "999999/1000000", "1"):
        if budget.left("accuracy") <= 0:
            break
        try:
            fd = fdiv.get("js", beta=beta)
            vals[beta] = float(numeric.divergence_from_logits(fd, t8, s8, reduction="batchmean"))
        except Exception as exc:  # noqa: BLE001
            vals[beta] = f"{type(exc).__name__}: {exc}"[:160]
    lines.append("generalized JS loss at beta = " + ", ".join(f"{b}: {v}" for b, v in vals.items()))
    # -inf masked entries and underflowing rows: no NaN
    tm = rng.standard_normal((16, 32000)).astype(np.float32)
    sm = rng.standard_normal((16, 32000)).astype(np.float32)
    tm[:, ::3] = -np.inf
    sm[:, 1::3] = -np.inf
    tm[8:] *= 100.0  # log-probabilities down to about -400: exp underflows in float32
    sm[8:] *= 100.0
    nan_rows = []
    for name in fdiv.names():
        loss, gs = numeric.divergence_from_logits(name, cp.asarray(tm), cp.asarray(sm), reduction="none",
                                                  return_grad=True)
        finite_loss = cp.asnumpy(loss)
        if np.isnan(finite_loss).any() or (np.isfinite(finite_loss).all() and np.isnan(cp.asnumpy(gs)).any()):
            nan_rows.append(name)
    lines.append(f"-inf masks and log-probabilities near -300: NaN in {nan_rows or 'no divergence'}")
    for line in lines:
        _log("[accuracy] " + line)
    return lines


def _peers(torch, label, compiled_cache):
    """Peer implementations of fwd + student gradient for ``label``: {impl: fn(t, s) or str}."""
    import torch.nn.functional as F  # noqa: N812

    def eager_kl(t, s):
        return F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True,
                        reduction="batchmean")

    def eager_js(t, s):
        lp, lq = F.log_softmax(t, -1), F.log_softmax(s, -1)
        lm = torch.logsumexp(torch.stack([lp, lq]), 0) - torch.log(torch.tensor(2.0, device=t.device))
        return 0.5 * (F.kl_div(lm, lp, log_target=True, reduction="batchmean")
                      + F.kl_div(lm, lq, log_target=True, reduction="batchmean"))

    eager = {"kl": eager_kl, "js": eager_js}[label]
    out = {"torch eager": eager}
    try:
        if label not in compiled_cache:
            compiled_cache[label] = torch.compile(eager)
        out["torch.compile"] = compiled_cache[label]
    except Exception as exc:  # noqa: BLE001
        out["torch.compile"] = f"torch.compile unavailable: {type(exc).__name__}"
    try:
        from liger_kernel.transformers import LigerJSD, LigerKLDIVLoss

        if label == "kl":
            mod = LigerKLDIVLoss(reduction="batchmean", log_target=True)
            out["Liger"] = lambda t, s: mod(F.log_softmax(s, -1), F.log_softmax(t, -1))
        else:
            mod = LigerJSD(beta=0.5)
            out["Liger"] = lambda t, s: mod(F.log_softmax(s, -1), F.log_softmax(t, -1))
    except ImportError:
        out["Liger"] = "liger_kernel not installed (carry its wheel)"
    return out


def part_timing(budget, cp, torch, copy_bw, quick):
    import numeric
    from theory import fdiv

    budget.begin("timing", SHARES["timing"])
    rows_out: list[Timing] = []
    compiled: dict = {}
    shapes = SHAPES[:1] if quick else SHAPES
    for rows, v in shapes:
        for dtype in DTYPES:
            tdt = getattr(torch, dtype)
            gen = torch.Generator(device="cuda").manual_seed(0)
            t = (torch.randn(rows, v, device="cuda", generator=gen) * 3).to(tdt)
            s = (torch.randn(rows, v, device="cuda", generator=gen) * 3).to(tdt)
            grad_bytes = rows * v * itemsize(dtype)
            for label, name, params in TIMED:
                key = ((rows, v), dtype, label)
                if budget.left("timing") <= 0:
                    rows_out.append(Timing(*key, "divkit", note="time budget"))
                    continue
                fd = fdiv.get(name, **params)

                def divkit(fd=fd, t=t, s=s, dtype=dtype):
                    if dtype == "float32":
                        return numeric.divergence_from_logits(
                            fd, cp.from_dlpack(t), cp.from_dlpack(s), reduction="batchmean",
                            return_grad=True)
                    import numeric.torch as nt

                    return nt._compute(fd, s, t, temperature=1.0, mask=None, reduction="batchmean",
                                       teacher_grad=False)

                try:
                    divkit()
                    ms = _bench(divkit, torch)
                    extra = _peak_extra_mib(divkit, torch, grad_bytes)
                    rows_out.append(Timing(*key, "divkit", ms, extra))
                except Exception as exc:  # noqa: BLE001
                    rows_out.append(Timing(*key, "divkit", note=f"{type(exc).__name__}: {exc}"[:120]))
                    traceback.print_exc()
                if label not in PEERS:
                    continue
                for impl, fn in _peers(torch, label, compiled).items():
                    if isinstance(fn, str) or budget.left("timing") <= 0:
                        rows_out.append(Timing(*key, impl, note=fn if isinstance(fn, str) else "time budget"))
                        continue
                    s_req = s.detach().requires_grad_(True)

                    def job(fn=fn, s_req=s_req, t=t, dtype=dtype):
                        tt = t.float() if dtype == "bfloat16" else t
                        ss = s_req.float() if dtype == "bfloat16" else s_req
                        loss = fn(tt, ss)
                        return torch.autograd.grad(loss, s_req)[0]

                    try:
                        job()
                        ms = _bench(job, torch)
                        extra = _peak_extra_mib(job, torch, grad_bytes)
                        rows_out.append(Timing(*key, impl, ms, extra))
                    except Exception as exc:  # noqa: BLE001
                        rows_out.append(Timing(*key, impl, note=f"{type(exc).__name__}: {exc}"[:120]))
                _log(f"[timing] {rows}×{v} {dtype} {label}: " + ", ".join(
                    f"{r.impl} {r.ms:.3f} ms" if r.ms is not None else f"{r.impl} skipped"
                    for r in rows_out if (r.shape, r.dtype, r.label) == key))
            del t, s
            torch.cuda.empty_cache()
    return rows_out


def main(argv=None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    try:
        import cupy as cp
        import torch
    except ImportError as exc:
        _log(f"needs cupy and torch on a CUDA device: {exc}")
        return 2
    if not torch.cuda.is_available():
        _log("no CUDA device visible")
        return 2
    _use_torch_allocator(cp, torch)
    from theory import fdiv

    card = torch.cuda.get_device_name()
    versions = {"torch": torch.__version__, "cupy": cp.__version__, "python": platform.python_version()}
    for mod in ("triton", "liger_kernel"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            versions[mod] = "absent"
    _log(f"device: {card}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    copy_bw = _copy_bandwidth(torch)
    _log(f"device-to-device copy: {copy_bw / 1e12:.2f} TB/s (read + write)")
    sections = []
    try:
        done, failures, skipped = part_check(budget, cp, torch, fdiv.names(), args.quick)
        sections.append(f"Check against numpy: {done} cases agree, {len(failures)} failures, "
                        f"{skipped} shapes skipped for time." + "".join(f"\n- FAIL {f}" for f in failures))
    except Exception:  # noqa: BLE001
        sections.append("Check: crashed\n```\n" + traceback.format_exc()[-2000:] + "\n```")
        traceback.print_exc()
    try:
        sections.append("\n".join(f"- {line}" for line in part_accuracy(budget, cp, torch)))
    except Exception:  # noqa: BLE001
        sections.append("Accuracy: crashed\n```\n" + traceback.format_exc()[-2000:] + "\n```")
        traceback.print_exc()
    timings = part_timing(budget, cp, torch, copy_bw, args.quick)
    table = timing_table(timings, copy_bw)
    summary = ratios(timings)
    _log(table)
    for line in summary:
        _log(line)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n\n".join([
        "## GPU: divergence and student gradient from logits, divkit (cupy) vs peers",
        f"Command: `python benchmarks/gpu_divergence.py{' --quick' if args.quick else ''}` — "
        f"{now}, {card}, " + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; device-to-device copy {copy_bw / 1e12:.2f} TB/s (read + write). Cells: median "
        "time (% of copy bandwidth for ideal bytes 3·B·V·itemsize), + peak extra device memory "
        "beyond the inputs and the gradient.",
        table, "\n".join(f"- {line}" for line in summary), *sections,
        f"Run time {budget.spent():.0f} s."])
    if args.out:
        Path(args.out).write_text(report + "\n")
        _log(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
