"""numeric.torch: the registered op against torch autograd references, gradcheck in float64,
autograd hygiene (no mutation, repeatable backward), reductions, masks, teacher gradient,
bfloat16, run-time parameters, zero-copy CPU route."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import test_torch_reference as tref

from theory import fdiv

torch = pytest.importorskip("torch")
nt = pytest.importorskip("numeric.torch")

NAMES = fdiv.names()

#: parameter extremes of the issue, with the catalog defaults
EXTREMES = [("js", {"beta": 1e-7}), ("js", {"beta": 1 - 1e-7}), ("alpha", {"alpha": 1e-9}),
            ("alpha", {"alpha": 0.3}), ("alpha", {"alpha": 2.0})]


def _logits(shape, seed, dtype=torch.float64, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, dtype=torch.float64, generator=g)).to(dtype)


def _mask(shape, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(*shape, generator=g) > 0.3
    m.view(-1)[0] = True
    return m


def _check_against_reference(name, params, *, reduction, temperature, mask, teacher_grad,
                             shape=(2, 3, 7), seed=0, rtol=1e-10):
    s = _logits(shape, seed).requires_grad_()
    t = _logits(shape, seed + 1).requires_grad_(teacher_grad)
    loss = nt.divergence_loss(s, t, name, params=params, temperature=temperature, mask=mask,
                              reduction=reduction)
    s_ref = s.detach().clone().requires_grad_()
    t_ref = t.detach().clone().requires_grad_(teacher_grad)
    ref = tref.reduce(tref.reference_rows(name, s_ref, t_ref, params=params,
                                          temperature=temperature), reduction, mask)
    assert loss.shape == ref.shape and loss.dtype == torch.float64
    scale = float(ref.detach().abs().max())
    assert float((loss - ref).detach().abs().max()) <= rtol * scale, (loss, ref)
    w = torch.linspace(0.5, 1.5, ref.numel(), dtype=torch.float64).reshape(ref.shape)
    (loss * w).sum().backward()
    (ref * w).sum().backward()
    for got, want in ((s.grad, s_ref.grad), (t.grad, t_ref.grad)):
        if want is None:
            assert got is None
            continue
        assert got.shape == want.shape and got.dtype == want.dtype
        err = float((got - want).abs().max())
        assert err <= rtol * float(want.abs().max()) + 1e-300, (name, err)


# ------------------------------------------------------------ values and gradients vs torch
@pytest.mark.parametrize("name", NAMES)
def test_every_catalog_f_matches_the_torch_autograd_reference(name):
    _check_against_reference(name, None, reduction="mean", temperature=1.7,
                             mask=_mask((2, 3), 5), teacher_grad=True)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_reductions_match_the_reference(reduction):
    _check_against_reference("js", {"beta": 0.3}, reduction=reduction, temperature=0.8,
                             mask=_mask((2, 3), 7), teacher_grad=True)


@pytest.mark.parametrize(("name", "params"), EXTREMES)
def test_parameter_extremes_match_the_reference(name, params):
    # the reference loses digits to cancellation at the extremes: a looser bound there, the
    # gradcheck below is the sharp test of the gradient
    _check_against_reference(name, params, reduction="sum", temperature=1.3, mask=None,
                             teacher_grad=True, rtol=1e-6)


# ------------------------------------------------------------------------------ gradcheck
def _gradcheck(name, params, *, reduction, temperature, mask, teacher_grad, shape=(2, 2, 5),
               seed=3):
    s = _logits(shape, seed).requires_grad_()
    t = _logits(shape, seed + 1).requires_grad_(teacher_grad)

    def fn(s, t):
        out = nt.divergence_loss(s, t, name, params=params, temperature=temperature, mask=mask,
                                 reduction=reduction)
        # weights so that "none" checks every row with a distinct coefficient
        return out * torch.arange(1, out.numel() + 1, dtype=out.dtype).reshape(out.shape)

    # the tolerance is relative to the gradient's size (a tiny JS at beta = 1e-7 would pass
    # any absolute tolerance)
    probe = nt.divergence_loss(s, t, name, params=params, temperature=temperature, mask=mask,
                               reduction="sum")
    gs = torch.autograd.grad(probe, [s] + ([t] if teacher_grad else []))
    size = max(float(g.abs().max()) for g in gs)
    assert size > 0
    assert torch.autograd.gradcheck(fn, (s, t), eps=1e-6, atol=1e-6 * size, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_one_case_per_catalog_f(name):
    _gradcheck(name, None, reduction="mean", temperature=1.3, mask=_mask((2, 2), 1),
               teacher_grad=True)


@pytest.mark.parametrize(("name", "params"), EXTREMES)
def test_gradcheck_parameter_extremes(name, params):
    _gradcheck(name, params, reduction="sum", temperature=0.7, mask=_mask((2, 2), 2),
               teacher_grad=True)


@pytest.mark.slow
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("teacher_grad", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("case", [(n, None) for n in NAMES] + EXTREMES,
                         ids=lambda c: f"{c[0]}-{c[1]}" if c[1] else c[0])
def test_gradcheck_sweep(case, reduction, teacher_grad, masked):
    name, params = case
    _gradcheck(name, params, reduction=reduction, temperature=1.9,
               mask=_mask((2, 2), 4) if masked else None, teacher_grad=teacher_grad)


# --------------------------------------------------------------------- autograd hygiene
def test_backward_twice_with_retain_graph_gives_the_same_gradient_and_keeps_saved_tensors():
    s = _logits((4, 9), 0).requires_grad_()
    t = _logits((4, 9), 1).requires_grad_()
    loss = nt.divergence_loss(s, t, "js")
    loss.backward(retain_graph=True)
    g1s, g1t = s.grad.clone(), t.grad.clone()
    s.grad = t.grad = None
    loss.backward(retain_graph=True)
    assert torch.equal(s.grad, g1s) and torch.equal(t.grad, g1t)
    # accumulation: a third backward adds the same gradient again
    loss.backward(retain_graph=True)
    assert torch.equal(s.grad, 2 * g1s) and torch.equal(t.grad, 2 * g1t)
    # what the user does to .grad in place (clipping, scaling) never reaches the saved tensor
    s.grad.mul_(10.0)
    t.grad.zero_()
    s.grad = t.grad = None
    loss.backward()
    assert torch.equal(s.grad, g1s) and torch.equal(t.grad, g1t)


def test_backward_with_an_incoming_gradient_other_than_one():
    s = _logits((3, 6), 2).requires_grad_()
    t = _logits((3, 6), 3)
    loss = nt.divergence_loss(s, t, "kl")
    (2.5 * loss).backward(retain_graph=True)
    g = s.grad.clone()
    s.grad = None
    loss.backward()
    assert torch.allclose(g, 2.5 * s.grad, rtol=1e-15, atol=0)
    q, p = torch.softmax(s.detach(), -1), torch.softmax(t, -1)
    assert torch.allclose(s.grad, (q - p) / 3, rtol=1e-12, atol=1e-15)  # KL: (q - p)/rows


def test_second_derivatives_are_refused_clearly():
    s = _logits((2, 5), 0).requires_grad_()
    loss = nt.divergence_loss(s, _logits((2, 5), 1), "kl")
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(loss, s, create_graph=True)


def test_no_grad_computes_the_loss_only():
    s = _logits((2, 5), 0).requires_grad_()
    t = _logits((2, 5), 1)
    with torch.no_grad():
        a = nt.divergence_loss(s, t, "js")
    b = nt.divergence_loss(s, t, "js")
    assert a.grad_fn is None and float(a) == float(b.detach())


def test_torch_func_transforms_are_refused_with_a_message():
    s = _logits((3, 6), 0)
    t = _logits((3, 6), 1)
    with pytest.raises(NotImplementedError, match="torch.func transforms"):
        torch.func.grad(lambda x: nt.divergence_loss(x, t, "kl", reduction="sum"))(s)
    with pytest.raises(NotImplementedError, match="torch.func transforms"):
        torch.vmap(lambda x, y: nt.divergence_loss(x, y, "kl"))(s[None], t[None])
    # the op itself, called directly under vmap, refuses too
    theta = torch.zeros(0, dtype=torch.float64)
    nt.register("kl")
    with pytest.raises(NotImplementedError, match="vmap"):
        torch.vmap(lambda x, y: torch.ops.divkit.divergence_from_logits(
            x, y, None, theta, "kl", 1.0, "sum", False, False)[0])(s[None], t[None])


# ------------------------------------------------------------------ masks and ignore_index
def test_labels_with_ignore_index_drop_rows_like_a_mask():
    s = _logits((2, 4, 8), 0).requires_grad_()
    t = _logits((2, 4, 8), 1)
    labels = torch.tensor([[1, -100, 3, 4], [-100, -100, 0, 2]])
    a = nt.divergence_loss(s, t, "js", labels=labels)
    (ga,) = torch.autograd.grad(a, s)
    b = nt.divergence_loss(s, t, "js", mask=labels != -100)
    (gb,) = torch.autograd.grad(b, s)
    assert a.item() == b.item() and torch.equal(ga, gb)
    assert (ga[labels == -100] == 0).all()
    rows = tref.reference_rows("js", s.detach(), t)
    assert abs(a.item() - float(rows[labels != -100].mean())) <= 1e-14


def test_bad_arguments_name_themselves():
    s, t = _logits((2, 5), 0), _logits((2, 5), 1)
    with pytest.raises(ValueError, match="reduction"):
        nt.divergence_loss(s, t, "kl", reduction="avg")
    with pytest.raises(ValueError, match="temperature"):
        nt.divergence_loss(s, t, "kl", temperature=0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt.divergence_loss(s, t[:, :4], "kl")
    with pytest.raises(ValueError, match="mask"):
        nt.divergence_loss(s, t, "kl", mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="beta"):
        nt.divergence_loss(s, t, "js", params={"beta": 1.5})
    with pytest.raises(ValueError, match="gamma"):
        nt.divergence_loss(s, t, "js", params={"gamma": 0.5})
    with pytest.raises(TypeError, match="floating"):
        nt.divergence_loss(s.long(), t.long(), "kl")


# -------------------------------------------------------------- the module and parameters
def test_divergence_loss_module_holds_f_and_options():
    from numeric.torch import DivergenceLoss

    s = _logits((2, 3, 7), 0).requires_grad_()
    t = _logits((2, 3, 7), 1)
    labels = torch.tensor([[0, -1, 2], [3, 4, -1]])
    mod = DivergenceLoss("alpha", params={"alpha": 0.3}, temperature=2.0, reduction="sum",
                         ignore_index=-1)
    assert isinstance(mod, torch.nn.Module) and mod.params == {"alpha": 0.3}
    a = mod(s, t, labels)
    b = nt.divergence_loss(s, t, "alpha", params={"alpha": 0.3}, temperature=2.0,
                           reduction="sum", mask=labels != -1)
    assert a.item() == b.item()
    user = fdiv.FDivergence.from_string("(sqrt(u) - 1)**2")
    c = DivergenceLoss(user, reduction="none")(s, t)
    ref = tref.reference_rows("hellinger", s.detach(), t)
    assert torch.allclose(c.detach(), ref, rtol=1e-12, atol=0)


def test_a_new_parameter_value_derives_and_compiles_nothing_new():
    from numeric import _forms
    from numeric._compile import compile_numpy
    from numeric.torch import DivergenceLoss

    s = _logits((4, 16), 0).requires_grad_()
    t = _logits((4, 16), 1)
    mod = DivergenceLoss("js", params={"beta": 0.2})
    mod(s, t).backward()
    derivations = _forms.family_forms.cache_info().misses
    compiled = compile_numpy.cache_info().misses if hasattr(compile_numpy, "cache_info") else None
    for beta in (0.25, 0.35, 0.45):
        mod.set_params(beta=beta)
        loss = mod(s, t)
        ref = tref.reference_rows("js", s.detach(), t, params={"beta": beta}).mean()
        assert abs(loss.item() - float(ref)) <= 1e-12 * float(ref)
    assert _forms.family_forms.cache_info().misses == derivations
    if compiled is not None:
        assert compile_numpy.cache_info().misses == compiled


# ---------------------------------------------------------------------- dtypes and memory
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs(dtype):
    # rows in several blocks: V large enough that a block holds a few rows only
    from numeric import _torch_ops

    v = 4099
    shape = (3, 2 * _torch_ops.BLOCK_ELEMENTS // v // 3 + 1, v)
    s = _logits(shape, 0, dtype).requires_grad_()
    t = _logits(shape, 1, dtype)
    mask = _mask(shape[:2], 3)
    loss = nt.divergence_loss(s, t, "js", mask=mask, reduction="batchmean")
    loss.backward()
    assert loss.dtype == dtype and s.grad.dtype == dtype
    s64 = s.detach().double().requires_grad_()
    ref = tref.reduce(tref.reference_rows("js", s64, t.double()), "batchmean", mask)
    ref.backward()
    assert abs(loss.item() - ref.item()) <= 1e-2 * ref.item()
    # the gradient is the float32 one rounded once to the half dtype
    err = (s.grad.double() - s64.grad).abs()
    assert float(err.max()) <= 2 ** -7 * float(s64.grad.abs().max())


def test_cpu_forward_reads_the_tensors_in_place_and_allocates_one_gradient():
    # float32 rows x V: the only large allocation is the gradient (numpy-owned memory,
    # traced by tracemalloc, wrapped by torch.from_numpy without a copy)
    rows, v = 16, 32000
    s = _logits((rows, v), 0, torch.float32).requires_grad_()
    t = _logits((rows, v), 1, torch.float32)
    nt.divergence_loss(s, t, "kl")  # warm: generated code compiled and cached
    grad_bytes = rows * v * 4
    tracemalloc.start()
    try:
        loss = nt.divergence_loss(s, t, "kl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    from numeric import _kernels

    block = 16 * _kernels.CHUNK_ELEMENTS * 8  # a few float64 temporaries of one row chunk
    assert peak - grad_bytes <= block, (peak, grad_bytes, block)
    loss.backward()
    assert s.grad.shape == s.shape


def test_the_stored_gradient_is_handed_to_autograd_without_a_copy():
    s = _logits((4, 11), 0).requires_grad_()
    t = _logits((4, 11), 1)
    key = nt.register("kl")
    loss, gs, _ = torch.ops.divkit.divergence_from_logits(
        s, t, None, torch.zeros(0, dtype=torch.float64), key, 1.0, "mean", True, False)
    ptr = gs.data_ptr()
    del gs
    loss.backward()
    assert s.grad.data_ptr() == ptr
    np.testing.assert_allclose(s.grad.numpy(), (torch.softmax(s.detach(), -1)
                                                - torch.softmax(t, -1)).numpy() / 4,
                               rtol=1e-12, atol=1e-16)


# ------------------------------------------------------------------ the op's registration
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_opcheck_schema_fake_autograd_and_aot_dispatch(reduction, dtype):
    # torch.library.opcheck: the schema, the fake implementation against the real one (shapes,
    # dtypes, strides), the autograd registration, and tracing through AOTAutograd
    s = _logits((2, 3, 9), 0, dtype).requires_grad_()
    t = _logits((2, 3, 9), 1, dtype).requires_grad_(dtype == torch.float64)
    mask = torch.tensor([[True, False, True], [True, True, True]])
    theta = torch.tensor([0.3], dtype=torch.float64)
    key = nt.register("js")  # imports torch and registers the ops
    result = torch.library.opcheck(
        torch.ops.divkit.divergence_from_logits.default,
        (s, t, mask, theta, key, 1.5, reduction, True, t.requires_grad))
    assert set(result.values()) == {"SUCCESS"}, result


def test_non_contiguous_inputs_give_the_same_result():
    s = _logits((7, 5), 0).t().requires_grad_()  # (5, 7), strides (1, 5)
    t = _logits((7, 5), 1).t()
    a = nt.divergence_loss(s, t, "hellinger", reduction="sum")
    (ga,) = torch.autograd.grad(a, s)
    s2 = s.detach().contiguous().requires_grad_()
    b = nt.divergence_loss(s2, t.contiguous(), "hellinger", reduction="sum")
    (gb,) = torch.autograd.grad(b, s2)
    assert a.item() == b.item() and torch.equal(ga, gb)
    key = nt.register("hellinger")
    result = torch.library.opcheck(
        torch.ops.divkit.divergence_from_logits.default,
        (s, t, None, torch.zeros(0, dtype=torch.float64), key, 1.0, "sum", True, False))
    assert set(result.values()) == {"SUCCESS"}, result
