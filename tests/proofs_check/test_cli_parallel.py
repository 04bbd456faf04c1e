"""``divkit check --workers N`` and ``--scheduler``: the same verdicts and numbers for any
worker count (issue 22), and seeded Monte Carlo chunks that combine exactly."""

from __future__ import annotations

import contextlib
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from proofs_check import catalog
from proofs_check.cli import main
from proofs_check.engines import montecarlo

#: Fast claims of each engine, two Monte Carlo ones among them.
SUBSET = ["tv_le_1", "false_js_le_half_log2", "kkt_map_kl", "plugin_kl_rate",
          "hg_gap_monte_carlo", "fdpg_importance_estimator_unbiased"]


def _run(*extra):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main(["check", "--json", "--claim", *SUBSET, *extra])
    rows = json.loads(buf.getvalue())
    for r in rows:
        r.pop("elapsed")
    return status, rows


@pytest.fixture(scope="module")
def serial():
    """The subset checked in this process, one claim after another (seed 0)."""
    return _run("--workers", "1")


def test_verdicts_and_numbers_do_not_depend_on_the_worker_count(serial):
    assert serial[0] == 0
    assert [r["claim"] for r in serial[1]] == [e.name for e in catalog.select(SUBSET)]
    assert _run("--workers", "2") == serial


@pytest.mark.slow  # a LocalCluster start; --workers 2 above is its fast sibling
def test_a_dask_local_cluster_gives_the_same_verdicts_and_numbers(serial):
    pytest.importorskip("distributed")
    assert _run("--scheduler", "local", "--workers", "2") == serial


def test_seed_changes_the_monte_carlo_numbers_but_not_the_verdicts(serial):
    mc_claims = ["plugin_kl_rate", "hg_gap_monte_carlo"]
    a = [r for r in serial[1] if r["claim"] in mc_claims]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["check", "--json", "--workers", "1", "--seed", "5", "--claim", *mc_claims])
    b = json.loads(buf.getvalue())
    assert [r["status"] for r in a] == [r["status"] for r in b]
    mc = [i for i, r in enumerate(a) if r["engine"] == "montecarlo"]
    assert mc and any(a[i]["margin"] != b[i]["margin"] for i in mc)


def _draw(rng, size):
    return rng.exponential(2.0, size)


def test_chunks_are_seeded_by_spawned_seed_sequences():
    # independent reference: the mean of the chunks drawn by hand from SeedSequence children
    n, seed = 10_001, 7
    sizes = montecarlo.chunk_sizes(n)
    assert len(sizes) == montecarlo.CHUNKS and sum(sizes) == n
    children = np.random.SeedSequence(seed).spawn(montecarlo.CHUNKS)
    draws = np.concatenate([np.random.default_rng(c).exponential(2.0, k)
                            for c, k in zip(children, sizes, strict=True)])
    mean, se = montecarlo._mean_se(_draw, seed, n, 1000, math.inf)
    assert mean == pytest.approx(float(np.mean(draws)), rel=1e-14)
    assert se == pytest.approx(float(np.std(draws, ddof=1) / np.sqrt(n)), rel=1e-9)


@pytest.mark.parametrize("threads", [2, 5])
def test_chunks_run_anywhere_give_identical_numbers(threads):
    serial = montecarlo.expectation(_draw, target=2.0, relation="eq", n=50_000,
                                    deadline=math.inf, seed=3)
    with ThreadPoolExecutor(threads) as ex:
        spread = montecarlo.expectation(_draw, target=2.0, relation="eq", n=50_000,
                                        deadline=math.inf, seed=3, mapper=ex.map)
    assert serial.status == spread.status == "consistent"
    assert (serial.estimate, serial.interval) == (spread.estimate, spread.interval)


def test_rate_chunks_run_anywhere_give_identical_numbers():
    def draw_at(rng, n, size):
        return rng.chisquare(1, size) / n   # E = 1/n: slope -1

    kw = dict(ns=[10, 20, 40, 80], slope=-1.0, tol=0.05, reps=4000, deadline=math.inf, seed=1)
    serial = montecarlo.rate(draw_at, **kw)
    with ThreadPoolExecutor(3) as ex:
        spread = montecarlo.rate(draw_at, mapper=ex.map, **kw)
    assert serial.status == "consistent"
    assert (serial.estimate, serial.interval) == (spread.estimate, spread.interval)


def test_longest_claims_go_first():
    from proofs_check._cli_check import longest_first

    times = {"a": 0.1, "b": 3.0, "c": 1.0}
    assert longest_first(["a", "b", "c", "new"], times) == ["new", "b", "c", "a"]


def test_no_progress_output_when_piped(capsys):
    assert main(["check", "--claim", "tv_le_1", "kkt_map_kl", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "every verdict equals its expected verdict" in captured.out


def test_progress_on_a_terminal(capsys, monkeypatch):
    import proofs_check.cli as cli

    monkeypatch.setattr(cli, "_isatty", lambda stream: True)
    assert main(["check", "--claim", "tv_le_1", "kkt_map_kl", "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "\x1b[" in err                      # drawn with terminal control sequences
    assert main(["check", "--claim", "tv_le_1", "kkt_map_kl", "--json"]) == 0
    assert capsys.readouterr().err == ""       # never with --json


def test_claims_about_one_divergence_share_a_unit():
    from proofs_check._cli_check import work_units

    names = ["nonneg_js", "pinsker", "kernel_js", "kernel_reverse_kl", "nonneg_kl", "tv_le_1"]
    units = work_units(names, {"pinsker": 5.0, "nonneg_js": 1.0, "kernel_js": 1.0})
    assert sorted(map(sorted, units)) == sorted(map(sorted, [
        ["nonneg_js", "kernel_js"], ["pinsker"], ["kernel_reverse_kl"], ["nonneg_kl"],
        ["tv_le_1"]]))
    assert units[-2:] == [["pinsker"], ["nonneg_js", "kernel_js"]]   # known times last, longest first
