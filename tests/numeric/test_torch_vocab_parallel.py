"""Vocabulary-parallel numeric.torch over gloo: 2 and 3 CPU processes, each holding a slice of
the vocabulary (uneven slices), against the unsharded loss and gradients (float64,
relative error <= 1e-12) for every catalog f."""

from __future__ import annotations

import datetime
import os
import socket
import time

import pytest

from theory import fdiv

torch = pytest.importorskip("torch")
nt = pytest.importorskip("numeric.torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

REL = 1e-12
SHAPE = (2, 3, 29)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bounds(v, world):
    """Uneven contiguous slices: rank r gets [lo, hi)."""
    cuts = [0] + [round(v * (k + 1) / world) + (1 if k == 0 else 0) for k in range(world - 1)] + [v]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _case_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    s = 2.0 * torch.randn(*SHAPE, dtype=torch.float64, generator=g)
    t = 2.0 * torch.randn(*SHAPE, dtype=torch.float64, generator=g)
    t[0, 1, 3] = -torch.inf  # a zero-mass teacher entry
    mask = torch.rand(SHAPE[:-1], generator=g) > 0.25
    mask[0, 0] = True
    return s, t, mask


def _rel(got, want):
    """Largest |got - want| over the finite entries relative to max |want| there; inf if the
    infinities (a divergence that is +inf where a row has p > 0 = q) or NaNs (the gradient
    of such a row) are not at the same places with the same values."""
    nan_g, nan_w = torch.isnan(got), torch.isnan(want)
    inf_g, inf_w = torch.isinf(got), torch.isinf(want)
    if not (torch.equal(nan_g, nan_w) and torch.equal(inf_g, inf_w)
            and torch.equal(got[inf_g], want[inf_w])):
        return float("inf")
    fin = ~(nan_w | inf_w)
    if not fin.any():
        return 0.0
    scale = float(want[fin].abs().max())
    err = float((got[fin] - want[fin]).abs().max())
    return err / scale if scale > 0 else err


def _worker(rank, world, port, cases):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        lo, hi = _bounds(SHAPE[-1], world)[rank]
        for k, (name, params, reduction, temperature) in enumerate(cases):
            s, t, mask = _case_inputs(k)
            teacher_grad = not (name == "kl" or name == "reverse_kl") or k % 2 == 0
            # unsharded: the fused op on whole rows
            s_full = s.clone().requires_grad_()
            t_full = t.clone().requires_grad_(teacher_grad)
            full = nt.divergence_loss(s_full, t_full, name, params=params,
                                      temperature=temperature, mask=mask, reduction=reduction)
            full.sum().backward()
            # sharded: this rank's slice of the vocabulary
            s_loc = s[..., lo:hi].clone().requires_grad_()
            t_loc = t[..., lo:hi].clone().requires_grad_(teacher_grad)
            loss_fn = nt.DivergenceLoss(name, params=params, temperature=temperature,
                                        reduction=reduction, process_group=dist.group.WORLD)
            part = loss_fn(s_loc, t_loc, mask=mask)
            part.sum().backward()
            where = f"{name} {params} {reduction} T={temperature} rank {rank}/{world}"
            assert part.shape == full.shape, where
            assert _rel(part.detach(), full.detach()) <= REL, (where, "loss")
            assert _rel(s_loc.grad, s_full.grad[..., lo:hi]) <= REL, (where, "student grad")
            if teacher_grad:
                assert _rel(t_loc.grad, t_full.grad[..., lo:hi]) <= REL, (where, "teacher grad")
    finally:
        dist.destroy_process_group()


def _run(world, cases, timeout=240):
    import torch.multiprocessing as mp

    port = _free_port()
    ctx = mp.start_processes(_worker, args=(world, port, cases), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{world} gloo processes did not finish in {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
            p.join(5)


REDUCTIONS = ["none", "sum", "mean", "batchmean"]


def _cases(names):
    out = []
    for k, name in enumerate(names):
        out.append((name, None, REDUCTIONS[k % 4], 1.0 + 0.3 * (k % 3)))
    return out


@pytest.mark.slow  # gloo process spawn; the threaded sharding test below is its fast sibling
def test_two_ranks_kl_js_alpha():
    _run(2, _cases(["kl", "js"]) + [("alpha", {"alpha": 0.3}, "sum", 0.9)])


@pytest.mark.slow
def test_three_ranks_js_and_tv():
    _run(3, [("js", {"beta": 0.2}, "mean", 1.5), ("tv", None, "none", 1.0)])


# ------------------------------------------- the sharding arithmetic in one process (fast)
class _Rank:
    """A process-group stand-in for threads of one process: the all-reduces of
    numeric._torch_vocab, done across the threads (same ops, same results)."""

    def __init__(self, rank, shared):
        self.rank = rank
        self.shared = shared

    def all_reduce(self, tensor, op):
        sh = self.shared
        sh["slots"][self.rank] = tensor.clone()
        sh["barrier"].wait()
        stack = torch.stack(sh["slots"])
        out = stack.amax(0) if op == dist.ReduceOp.MAX else stack.sum(0)
        sh["barrier"].wait()
        tensor.copy_(out)


def test_sharding_arithmetic_with_threads_standing_in_for_ranks(monkeypatch):
    import threading
    import types

    from numeric import _torch_vocab

    fake = types.SimpleNamespace(ReduceOp=dist.ReduceOp,
                                 all_reduce=lambda t, op, group: group.all_reduce(t, op))
    monkeypatch.setattr(_torch_vocab, "dist", fake)
    cases = [("js", {"beta": 0.2}, "mean", 1.5), ("tv", None, "none", 1.0),
             ("reverse_kl", None, "sum", 0.8)]
    for world in (2, 3):
        shared = {"slots": [None] * world, "barrier": threading.Barrier(world, timeout=60)}
        errors = []

        def rank_main(rank, world=world, shared=shared, errors=errors):
            try:
                lo, hi = _bounds(SHAPE[-1], world)[rank]
                for k, (name, params, reduction, temperature) in enumerate(cases):
                    s, t, mask = _case_inputs(k)
                    s_full = s.clone().requires_grad_()
                    t_full = t.clone().requires_grad_()
                    full = nt.divergence_loss(s_full, t_full, name, params=params,
                                              temperature=temperature, mask=mask,
                                              reduction=reduction)
                    full.sum().backward()
                    s_loc = s[..., lo:hi].clone().requires_grad_()
                    t_loc = t[..., lo:hi].clone().requires_grad_()
                    part = nt.divergence_loss(s_loc, t_loc, name, params=params,
                                              temperature=temperature, mask=mask,
                                              reduction=reduction,
                                              process_group=_Rank(rank, shared))
                    part.sum().backward()
                    where = (name, world, rank)
                    assert _rel(part.detach(), full.detach()) <= REL, (where, "loss")
                    assert _rel(s_loc.grad, s_full.grad[..., lo:hi]) <= REL, (where, "student")
                    assert _rel(t_loc.grad, t_full.grad[..., lo:hi]) <= REL, (where, "teacher")
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                shared["barrier"].abort()

        threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(world)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
        assert not real, real[0]
        assert not errors, errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_every_catalog_f(world):
    _run(world, _cases(fdiv.names()) + [("js", {"beta": 1e-7}, "sum", 1.0),
                                        ("js", {"beta": 1 - 1e-7}, "mean", 1.0),
                                        ("alpha", {"alpha": 2.0}, "batchmean", 1.2)], timeout=500)
