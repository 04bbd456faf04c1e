"""CPU benchmark: one optimizer step of a small distilled student, divkit's fused loss vs the
same loss written in torch (eager and torch.compile), same process, same inputs.

The student is an embedding and a linear head (V = 32000 by default); the teacher's logits
are fixed. One step is ``zero_grad``, forward, loss, ``backward``, ``SGD.step``. Three
variants per divergence (KL and JS, β = 1/2), all float32 unless ``--dtype``:

* divkit: ``numeric.torch.DivergenceLoss(f)`` (the registered op, eager model);
* torch eager: the loss from ``log_softmax`` (KL: ``sum p (log p - log q)``; JS: both
  KLs to the mixture through ``logaddexp``), autograd for the gradient;
* torch compiled: the same step (model + torch formula) under
  ``torch.compile(fullgraph=True)`` (inductor), compiled before timing.

Prints best-of-N wall times (the variants interleaved per repeat), the ratios
(torch / divkit), the largest relative difference of the head's gradient between divkit and
torch eager (a sanity check), and the peak traced memory of divkit's forward beyond the
gradient (tracemalloc: numpy-owned memory, which holds divkit's outputs and temporaries).

Usage::

    python benchmarks/torch_training_step.py [--tokens 256] [--vocab 32000] [--hidden 64]
        [--repeats 7] [--threads N] [--dtype float32]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
import tracemalloc

import torch

import numeric.torch as nt


def kl_torch(student, teacher):
    lq = torch.log_softmax(student, dim=-1)
    lp = torch.log_softmax(teacher, dim=-1)
    return (lp.exp() * (lp - lq)).sum(-1).mean()


def js_torch(student, teacher):
    lq = torch.log_softmax(student, dim=-1)
    lp = torch.log_softmax(teacher, dim=-1)
    lm = torch.logaddexp(lp, lq) - torch.log(torch.tensor(2.0, dtype=lp.dtype))
    return (0.5 * (lp.exp() * (lp - lm)).sum(-1) + 0.5 * (lq.exp() * (lq - lm)).sum(-1)).mean()


FORMULAS = {"kl": kl_torch, "js": js_torch}


class Student(torch.nn.Module):
    def __init__(self, vocab_in, hidden, vocab, dtype):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab_in, hidden, dtype=dtype)
        self.head = torch.nn.Linear(hidden, vocab, dtype=dtype)

    def forward(self, ids):
        return self.head(self.emb(ids))


def make_step(model, loss, opt):
    def step(ids, teacher):
        opt.zero_grad(set_to_none=True)
        out = loss(model(ids), teacher)
        out.backward()
        opt.step()
        return out

    return step


def make_compiled_step(model, formula):
    """The step with model + torch formula under torch.compile(fullgraph=True) (inductor);
    backward and the optimizer step outside the compiled region, as usual."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    fwd = torch.compile(lambda ids, teacher: formula(model(ids), teacher), fullgraph=True)

    def step(ids, teacher):
        opt.zero_grad(set_to_none=True)
        out = fwd(ids, teacher)
        out.backward()
        opt.step()
        return out

    return step


def best_of(fns, repeats):
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [min(t) for t in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    ap.add_argument("--names", default="kl,js")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1024, (args.tokens,), generator=g)
    teacher = (3.0 * torch.randn(args.tokens, args.vocab, generator=g)).to(dtype)
    print(f"# {datetime.date.today()} {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"tokens={args.tokens} V={args.vocab} hidden={args.hidden} {args.dtype}")
    print("| f | divkit (ms) | torch eager (ms) | torch.compile (ms) | eager/divkit | "
          "compile/divkit | head grad rel. diff | divkit extra memory (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.names.split(","):
        models = []
        for _ in range(3):
            torch.manual_seed(1)
            models.append(Student(1024, args.hidden, args.vocab, dtype))
        fused = nt.DivergenceLoss(name)
        steps = [make_step(models[0], fused, torch.optim.SGD(models[0].parameters(), lr=0.0)),
                 make_step(models[1], FORMULAS[name], torch.optim.SGD(models[1].parameters(),
                                                                      lr=0.0))]
        steps.append(make_compiled_step(models[2], FORMULAS[name]))
        for s in steps:  # warm-up: generated kernels, inductor compile
            s(ids, teacher)
            s(ids, teacher)
        t = best_of([lambda s=s: s(ids, teacher) for s in steps], args.repeats)
        g_div = models[0].head.weight.grad.double()
        g_ref = models[1].head.weight.grad.double()
        rel = float((g_div - g_ref).abs().max() / g_ref.abs().max())
        # memory: the fused forward alone, under tracemalloc
        logits = models[0](ids).detach().requires_grad_()
        tracemalloc.start()
        loss = fused(logits, teacher)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del loss
        extra = (peak - logits.numel() * logits.element_size()) / 2**20
        print(f"| {name} | {1e3 * t[0]:.1f} | {1e3 * t[1]:.1f} | {1e3 * t[2]:.1f} | "
              f"{t[1] / t[0]:.2f} | {t[2] / t[0]:.2f} | {rel:.1e} | {extra:.2f} |")


if __name__ == "__main__":
    main()
