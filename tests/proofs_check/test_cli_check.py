"""``divkit check``: table, JSON, exit status, budgets, selection errors."""

import json

import pytest

from proofs_check import catalog
from proofs_check.cli import main


def test_table_for_a_few_claims(capsys):
    status = main(["check", "--claim", "tv_le_1", "false_js_le_half_log2", "--claim", "kkt_map_kl"])
    out = capsys.readouterr().out
    assert status == 0
    for name in ("tv_le_1", "false_js_le_half_log2", "kkt_map_kl"):
        assert name in out
    assert "certified" in out and "violated" in out and "proved" in out
    assert "every verdict equals its expected verdict" in out


def test_json_has_one_object_per_claim(capsys):
    status = main(["check", "--tag", "asymptotics", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [r["claim"] for r in rows] == [e.name for e in catalog.select(tags=["asymptotics"])]
    for r in rows:
        assert {"status", "engine", "expected", "ok", "margin", "counterexample", "elapsed",
                "source"} <= set(r)  # fmt: skip


def test_budget_turns_unfinished_work_into_inconclusive_and_nonzero_exit(capsys):
    status = main(["check", "--claim", "pinsker", "--budget", "0.01", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["status"] == "inconclusive"
    assert rows[0]["ok"] is False
    assert status == 1


def test_unknown_claim_or_tag_is_a_usage_error(capsys):
    assert main(["check", "--claim", "pinskr"]) == 2
    assert "did you mean pinsker" in capsys.readouterr().err
    assert main(["check", "--tag", "nope"]) == 2
    with pytest.raises(SystemExit) as exc:  # an argparse usage error, before any claim runs
        main(["check", "--claim", "pinsker", "--budget", "-1"])
    assert exc.value.code == 2


def test_list(capsys):
    assert main(["check", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == catalog.names()


def test_bounded_catalog_json(bounded_catalog_run):
    status, verdicts, _seconds = bounded_catalog_run
    assert isinstance(verdicts, list) and all(isinstance(v, dict) for v in verdicts)
    names = [v["claim"] for v in verdicts]
    assert len(set(names)) == len(names) and set(names) <= set(catalog.names())
    assert status in (0, 1)


@pytest.mark.slow
def test_full_default_catalog_json(full_catalog_run):
    status, verdicts, seconds = full_catalog_run
    assert isinstance(verdicts, list)
    assert [v["claim"] for v in verdicts] == catalog.names()
    assert all(isinstance(v, dict) for v in verdicts)
    assert seconds < 180
    assert status in (0, 1)
