"""numeric's public functions refuse empty, complex and non-finite inputs with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import numeric


@pytest.mark.parametrize("fn", [
    lambda x: numeric.divergence("kl", x, x),
    lambda x: numeric.divergence_from_logits("kl", x, x),
    lambda x: numeric.policy_from_reward("kl", x, x, beta=1.0),
])
def test_numeric_inputs_empty_or_complex(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="real"):
        fn(np.full((1, 3), 1 / 3 + 0j))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fdpo_rejects_non_finite(bad):
    z = np.zeros(2)
    with pytest.raises(ValueError, match="ref_logp_rejected must be finite"):
        numeric.fdpo_loss("kl", z, z, z, np.array([0.0, bad]), beta=0.1)
