r"""Bounds and rates as computable objects: each evaluated exactly or at high precision.

* Hierarchical information-theoretic generalization bounds (He & Goldfeld; Xu & Raginsky) on
  binary Gaussian classification with a noisy linear network, where the gap and the layer-wise
  KL divergences are exact (:class:`GaussianLinearNetwork`), and strong data-processing
  coefficients of Gaussian noise, Dropout and DropConnect (:func:`gaussian_eta_tv`,
  :func:`dropout_dobrushin`, :func:`dropconnect_dobrushin`).
* Kernel density estimation in large dimensions (Biroli & Mézard): the derived thresholds
  :math:`h_G`, :math:`h_{CLT} = \sqrt2 h_G` and the KL-optimal bandwidth
  (:func:`kde_thresholds`) and a Monte Carlo of the finite-d estimator (:func:`kde_monte_carlo`).
* The universality lens (Feder, Urbanke & Fogel): exact regret of Bayesian mixtures on finite
  classes and its weight bound (:func:`bernoulli_mixture_regret`, :func:`weight_bound`), and the
  KT/Laplace mixtures (:func:`dirichlet_mixture_regret`, :func:`clarke_barron_constant`).
* Scaling laws (Henighan et al.): :func:`fit_scaling_law` with intervals and clear refusals.

The claims that use them are in :mod:`proofs_check.claimsets.bounds` (``divkit check --tag
bounds``); docs/bounds.md states what is derived and what is measured.

>>> from proofs_check import bounds
>>> th = bounds.kde_thresholds(0.5)
>>> bool(th.h_opt < th.h_g < th.h_clt)
True
>>> float(bounds.gaussian_eta_tv(2, 1))
0.9544997361036416
"""

from proofs_check.bounds._itgen import (
    GaussianLinearNetwork,
    dropconnect_dobrushin,
    dropout_dobrushin,
    gaussian_eta_tv,
    gaussian_pair_tv,
)
from proofs_check.bounds._kde import (
    KDEThresholds,
    kde_kl_per_dimension,
    kde_min_distance_exact,
    kde_monte_carlo,
    kde_rate_function,
    kde_thresholds,
)
from proofs_check.bounds._scaling import ScalingLawFit, fit_scaling_law
from proofs_check.bounds._universality import (
    bernoulli_mixture_regret,
    clarke_barron_constant,
    dirichlet_mixture_regret,
    weight_bound,
)

__all__ = [
    "GaussianLinearNetwork",
    "gaussian_eta_tv",
    "gaussian_pair_tv",
    "dropout_dobrushin",
    "dropconnect_dobrushin",
    "KDEThresholds",
    "kde_thresholds",
    "kde_kl_per_dimension",
    "kde_rate_function",
    "kde_min_distance_exact",
    "kde_monte_carlo",
    "bernoulli_mixture_regret",
    "weight_bound",
    "dirichlet_mixture_regret",
    "clarke_barron_constant",
    "ScalingLawFit",
    "fit_scaling_law",
]
