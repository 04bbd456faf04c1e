r"""Vocabulary-parallel fused divergence: logits sharded along the vocabulary over the ranks
of a ``torch.distributed`` process group (tensor-parallel LM heads).

Every rank holds the same rows and a slice of the vocabulary (any split, the slices in any
order); the loss is that of the full rows and each rank gets the gradient of its own slice.
Three all-reduces of per-row vectors, never a gather of the rows (as Megatron's
vocab-parallel cross entropy):

1. ``MAX`` of the row maxima :math:`m_a, m_b` of the teacher and student logits (scaled by
   :math:`1/T`);
2. ``SUM`` of :math:`\sum_j e^{a_j - m_a}` and :math:`\sum_j e^{b_j - m_b}`: the global
   log-normalisers :math:`L_a = m_a + \log\sum e^{a - m_a}`, :math:`L_b` likewise;
3. ``SUM`` of the partial row sums :math:`\sum_j q_j F(r_j)` (the divergence),
   :math:`\sum_j q_j \hat g_j` and, for the teacher gradient, :math:`\sum_j p_j \hat h_j`.

How the element kernel takes the normalisers: it is handed the log-probabilities
:math:`\log p_j = a_j - L_a` and :math:`\log q_j = b_j - L_b` and their difference
:math:`\ell_j = (a_j - b_j) - (L_a - L_b)` (row constants cancelled first), and evaluates
numeric's element forms of f on them (:mod:`numeric._forms`; the log-weighted branches with
the series near :math:`\ell = 0` and the zero-mass limits, as the unsharded kernel's careful
path does). With :math:`M_s = \sum_i q_i\hat g_i` and :math:`M_t = \sum_i p_i\hat h_i` of
the whole row, the slice's gradients are

.. math::
    \partial D/\partial b_j = q_j\hat g_j - q_j M_s,\qquad
    \partial D/\partial a_j = p_j\hat h_j - p_j M_t,

times the reduction's scale and :math:`1/T`. The element terms are computed in float64 on
row blocks of :data:`numeric._torch_ops.BLOCK_ELEMENTS` elements; the element terms
:math:`q\hat g` (and :math:`p\hat h`) wait in float64 until :math:`M_s` (:math:`M_t`) is
known: one float64 copy of the local slice per gradient, for the whole call. This element
pass runs on the host: CUDA tensors are copied to the host one block at a time (the
all-reduces run on the tensors' device, as NCCL needs), so the vocabulary-parallel path is
exact on any device but fast on the CPU only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from numeric._forms import forms

__all__ = ["forward"]


def _terms(fm, which, la, lb, ell):
    """Weighted element terms ``q X(p/q)`` of ``which`` from log-weights (float64 arrays)."""
    from numeric._kernels import _careful_terms

    with np.errstate(all="ignore"):
        return _careful_terms(fm, which, la, lb, ell)


def forward(fam, params, student, teacher, mask, temperature, reduction, sg, tg, group):
    from numeric._torch_ops import BLOCK_ELEMENTS, reduction_factor

    fm = forms(fam, **params)
    v = student.shape[-1]
    batch = tuple(student.shape[:-1])
    s2 = student.detach().reshape(-1, v)
    t2 = teacher.detach().reshape(-1, v)
    n = s2.shape[0]
    keep = (torch.ones(n, dtype=torch.bool) if mask is None
            else mask.detach().reshape(-1).to("cpu"))
    rows = torch.nonzero(keep).reshape(-1)
    kept = int(rows.numel())
    dev = student.device
    rows_dev = rows.to(dev)
    scale = reduction_factor(reduction, batch, kept)
    inv_t = 1.0 / temperature
    step = max(1, BLOCK_ELEMENTS // max(v, 1))
    blocks = [rows_dev[i:i + step] for i in range(0, kept, step)]

    def block(x, idx):
        """Rows ``idx`` of ``x`` / T as a float64 host array (one block)."""
        return x.index_select(0, idx).to(torch.float64).mul_(inv_t).cpu().numpy()

    def all_reduce(host, op):
        """All-reduce a host float64 tensor on the group's device (the tensors' device)."""
        buf = host.to(dev)
        dist.all_reduce(buf, op=op, group=group)
        return buf.cpu() if buf is not host else host

    # 1. row maxima
    mx = torch.full((2, kept), -np.inf, dtype=torch.float64)
    off = 0
    for idx in blocks:
        k = idx.numel()
        if v:
            mx[0, off:off + k] = torch.from_numpy(block(t2, idx).max(axis=-1))
            mx[1, off:off + k] = torch.from_numpy(block(s2, idx).max(axis=-1))
        off += k
    mx = all_reduce(mx, dist.ReduceOp.MAX)
    if not torch.isfinite(mx).all():
        raise ValueError("a kept row has all logits -inf (or NaN/+inf logits) across the "
                         "process group; drop such rows with mask=")
    # 2. row sums of exp(x - max)
    sm = torch.zeros((2, kept), dtype=torch.float64)
    off = 0
    for idx in blocks:
        k = idx.numel()
        with np.errstate(under="ignore"):
            sm[0, off:off + k] = torch.from_numpy(
                np.exp(block(t2, idx) - mx[0, off:off + k, None].numpy()).sum(axis=-1))
            sm[1, off:off + k] = torch.from_numpy(
                np.exp(block(s2, idx) - mx[1, off:off + k, None].numpy()).sum(axis=-1))
        off += k
    sm = all_reduce(sm, dist.ReduceOp.SUM)
    lse = (mx + torch.log(sm)).numpy()
    # 3. element terms; partial row sums
    which = ("loss",) + (("grad_student",) if sg else ()) + (("grad_teacher",) if tg else ())
    gs = student.new_zeros(student.shape) if sg else student.new_empty(0)
    gt = teacher.new_zeros(teacher.shape) if tg else teacher.new_empty(0)
    partial = torch.zeros((len(which), kept), dtype=torch.float64)
    stores = {}
    off = 0
    for idx in blocks:
        k = idx.numel()
        la = block(t2, idx) - lse[0, off:off + k, None]
        lb = block(s2, idx) - lse[1, off:off + k, None]
        with np.errstate(invalid="ignore"):
            ell = la - lb
        terms = _terms(fm, which, la, lb, ell)
        for w, term in enumerate(terms):
            partial[w, off:off + k] = torch.from_numpy(term.sum(axis=-1))
        for w, name in enumerate(which[1:], start=1):
            stores[(name, off)] = terms[w]  # q g (p h), until the row sums are known
        off += k
    partial = all_reduce(partial, dist.ReduceOp.SUM)
    div = torch.clamp(partial[0], min=0.0)
    # 4. the gradient write: w_j (X_j - M), times the reduction scale and 1/T
    gscale = scale * inv_t
    flat = (div == 0.0).numpy()
    for w, name in enumerate(which[1:], start=1):
        out = (gs if name == "grad_student" else gt).view(-1, v)
        lidx = 1 if name == "grad_student" else 0
        m = partial[w].numpy()
        off = 0
        for idx in blocks:
            k = idx.numel()
            term = stores.pop((name, off))
            x = block(s2 if lidx else t2, idx) - lse[lidx, off:off + k, None]
            with np.errstate(under="ignore"):
                weight = np.exp(x)
            with np.errstate(invalid="ignore"):
                g = term - weight * m[off:off + k, None]
            # as the unsharded kernel: a row whose sum is not finite (its divergence is +inf)
            # has no gradient (NaN); a row with D = 0 (r = 1 throughout) has gradient 0
            g[~np.isfinite(m[off:off + k])] = np.nan
            g[flat[off:off + k]] = 0.0
            g *= gscale
            out.index_copy_(0, idx, torch.from_numpy(g).to(dev, out.dtype))
            off += k
    per_row = torch.zeros(n, dtype=torch.float64)
    per_row[rows] = div
    out_dtype = torch.promote_types(student.dtype, teacher.dtype)
    loss = per_row.reshape(batch) if reduction == "none" else per_row.sum() * scale
    return loss.to(dev, out_dtype), gs, gt
