"""Make docs/alignment_rates.png: KL(π*‖π_N) of Nash-MP, mirror descent and Nash-MD.

Run from the repository root::

    python docs/make_alignment_plot.py

The four games of ``proofs_check.nash_rates.games()`` (generalised rock-paper-scissors with
5 and 3 actions, random preferences with 8 and 12 actions), the equilibrium π* at 50 digits,
KL(π*‖π_N) at 30 digits from the float64 iterates. Left: Nash-MP (η = 2, two queries per
step) against the stated bound (1+2β)^(−N/2)·KL(π*‖π_0), with the fitted slope per query and
its 99.9 % interval as the catalog claim ``nash_mp_linear_rate`` computes them. Right: plain
mirror descent at the same η (cycles on the cyclic games) and Nash-MD (η_k = 2/(β(k+2)),
polynomial), on log–log axes.
"""

from __future__ import annotations

import math
import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from proofs_check import nash_rates as nr  # noqa: E402
from proofs_check.claimsets.alignment import _STEPS, _linear_fit, _nash_md_fits  # noqa: E402

OUT = pathlib.Path(__file__).with_name("alignment_rates.png")
COLORS = ["tab:blue", "tab:red", "tab:green", "tab:purple"]


def main() -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for color, (name, g) in zip(COLORS, nr.games().items(), strict=False):
        b = float(g.beta)
        ks, kl = nr.curve(name, "nash_mp", _STEPS["nash_mp"])
        keep = kl > 1e-26
        N = 2 * ks
        fit, _ = _linear_fit(name, "nash_mp")
        ax1.semilogy(N[keep], kl[keep], "-", color=color, lw=1.4,
                     label=f"{name}: slope {fit.slope:.4f} [{fit.lo:.4f}, {fit.hi:.4f}]/query")
        bound = kl[0] * (1 + 2 * b) ** (-N / 2)
        ax1.semilogy(N[bound > 1e-26], bound[bound > 1e-26], ":", color=color, lw=1,
                     label=f"bound (1+2β)^(-N/2) KL₀, slope {-0.5 * math.log(1 + 2 * b):.4f}")
        ks_o, kl_o = nr.curve(name, "omd", _STEPS["omd"])
        ko = kl_o > 1e-26
        ax2.loglog(np.maximum(ks_o[ko], 1), kl_o[ko], "--", color=color, lw=1,
                   label=f"{name}: mirror descent η = 2")
        ks_m, kl_m = nr.curve(name, "nash_md", _STEPS["nash_md"], 25)
        poly, _late = _nash_md_fits(name)
        ax2.loglog(np.maximum(ks_m, 1), kl_m, "-", color=color, lw=1.4,
                   label=f"{name}: Nash-MD, log–log slope {poly.slope:.2f}")
    ax2.loglog([100, 2000], [1e-2, 1e-2 / 20], "k-.", lw=0.8, label="slope −1 (O(1/N))")
    ax1.set_xlabel("preference queries N")
    ax1.set_ylabel("KL(π* ‖ π_N)")
    ax1.set_ylim(1e-26, 10)
    ax1.set_title("Nash-MP: linear rate vs the stated (1+2β)^(−N/2)")
    ax1.legend(fontsize=6)
    ax2.set_xlabel("queries N (one per step)")
    ax2.set_ylabel("KL(π* ‖ π_N)")
    ax2.set_ylim(1e-26, 10)
    ax2.set_title("mirror descent (η = 2) and Nash-MD (η_k = 2/(β(k+2)))")
    ax2.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
