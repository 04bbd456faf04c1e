"""numeric.torch in a training loop: a small student (embedding + linear head, V = 32000)
distilled from a fixed teacher with ``torch.compile(fullgraph=True)``; the loss decreases and
the gradients equal those of the same loss written in eager torch (float32 model; the torch
formula evaluated in float64 on the same logits, so that the comparison measures divkit's
float32 gradient and not the formula's own float32 cancellation)."""

from __future__ import annotations

import pytest
import test_torch_reference as tref

torch = pytest.importorskip("torch")
nt = pytest.importorskip("numeric.torch")

V = 32000
TOKENS = 16
HIDDEN = 32


class Student(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.nn.Embedding(64, HIDDEN)
        self.head = torch.nn.Linear(HIDDEN, V)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(64, HIDDEN, generator=g))
            self.head.weight.copy_(0.05 * torch.randn(V, HIDDEN, generator=g))
            self.head.bias.zero_()

    def forward(self, ids):
        return self.head(self.emb(ids))


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 64, (TOKENS,), generator=g)
    teacher = 3.0 * torch.randn(TOKENS, V, generator=g)
    return ids, teacher


FORMULAS = {"kl": tref.kl_torch, "js": tref.js_torch}


def _grads(model):
    return [p.grad.detach().clone() for p in model.parameters()]


def _rel(got, want):
    return float((got.double() - want.double()).abs().max()) / float(want.abs().max())


def _check_gradients(name, model, loss_fn, ids, teacher, where):
    """The compiled step's gradients against the eager torch formula: the logits gradient
    (divkit's float32 result vs the formula in float64 on the same float32 logits), and the
    parameter gradients (the compiled step's vs the formula's logits gradient propagated
    through the same float32 model)."""
    got = _grads(model)
    logits = model(ids)
    x64 = logits.detach().double().requires_grad_()
    (g64,) = torch.autograd.grad(FORMULAS[name](x64, teacher.double(), 2.0), x64)
    x32 = logits.detach().requires_grad_()
    loss_fn(x32, teacher).backward()
    assert x32.grad.dtype == torch.float32
    assert _rel(x32.grad, g64) <= 1e-6, (where, "logits", _rel(x32.grad, g64))
    model.zero_grad()
    logits.backward(g64.float())
    for p, g in zip(model.parameters(), got, strict=True):
        assert _rel(g, p.grad) <= 1e-6, (where, "parameters", _rel(g, p.grad))
        p.grad = g


def _train(name, steps, backend):
    torch.manual_seed(0)
    model = Student()
    ids, teacher = _batch()
    loss_fn = nt.DivergenceLoss(name, temperature=2.0)

    def step(ids, teacher):
        return loss_fn(model(ids), teacher)

    compiled = torch.compile(step, fullgraph=True, backend=backend)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for k in range(steps):
        opt.zero_grad()
        loss = compiled(ids, teacher)
        loss.backward()
        if k in (0, steps - 1):
            _check_gradients(name, model, loss_fn, ids, teacher, where=(name, k))
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", ["kl", "js"])
def test_three_compiled_steps_trace_fullgraph_and_match_eager_torch(name):
    # aot_eager: Dynamo (fullgraph) and AOTAutograd trace the step through the op's fake and
    # autograd rules, without inductor's C++ build (the slow tier runs inductor)
    losses = _train(name, 3, "aot_eager")
    assert losses[2] < losses[1] < losses[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kl", "js"])
def test_fifty_compiled_steps_with_inductor(name):
    losses = _train(name, 50, "inductor")
    assert losses[-1] < 0.2 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))


def test_a_compiled_beta_schedule_neither_recompiles_nor_rederives():
    from torch._dynamo.testing import CompileCounter

    from numeric import _forms

    model = Student()
    ids, teacher = _batch()
    loss_fn = nt.DivergenceLoss("js", params={"beta": 0.1})
    counter = CompileCounter()
    compiled = torch.compile(lambda i, t: loss_fn(model(i), t), fullgraph=True, backend=counter)
    compiled(ids, teacher).backward()
    frames, derivations = counter.frame_count, _forms.family_forms.cache_info().misses
    for beta in (0.2, 0.3, 0.4, 0.5):
        loss_fn.set_params(beta=beta)
        loss = compiled(ids, teacher)
        with torch.no_grad():
            ref = tref.reference_rows("js", model(ids).double(), teacher.double(),
                                      params={"beta": beta}).mean()
        assert abs(float(loss.detach()) - float(ref)) <= 1e-5 * float(ref)
    assert counter.frame_count == frames == 1
    assert _forms.family_forms.cache_info().misses == derivations


def test_the_functional_form_compiles_with_a_catalog_name_and_tensor_params():
    from torch._dynamo.testing import CompileCounter

    model = Student()
    ids, teacher = _batch()
    counter = CompileCounter()

    def step(ids, teacher, beta):
        return nt.divergence_loss(model(ids), teacher, "js", params={"beta": beta},
                                  temperature=2.0, labels=ids % 5, ignore_index=0)

    compiled = torch.compile(step, fullgraph=True, backend=counter)
    for beta in (0.2, 0.7):
        b = torch.tensor(beta, dtype=torch.float64)
        loss = compiled(ids, teacher, b)
        loss.backward()
        with torch.no_grad():
            eager = step(ids, teacher, beta)
        assert abs(loss.item() - eager.item()) <= 1e-6 * eager.item()
    assert counter.frame_count == 1
