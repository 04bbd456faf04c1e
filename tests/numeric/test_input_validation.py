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


@pytest.mark.parametrize("fn", [
    lambda params: numeric.divergence("js", np.array([0.5, 0.5]), np.array([0.3, 0.7]),
                                      params=params),
    lambda params: numeric.divergence_from_logits("js", np.zeros((1, 3)), np.ones((1, 3)),
                                                  params=params),
    lambda params: numeric.fdpo_loss("js", -1.0, -2.0, -1.5, -1.2, beta=0.5, params=params),
    lambda params: numeric.policy_from_reward("js", np.zeros((1, 3)), np.log(np.ones((1, 3)) / 3),
                                              beta=1.0, params=params),
])
def test_a_bool_parameter_is_refused(fn):
    # True was read as beta = 1, where JS is identically 0: a silent wrong answer
    with pytest.raises(TypeError, match="bool"):
        fn({"beta": True})
