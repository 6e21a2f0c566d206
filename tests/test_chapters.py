"""Tests of unet_repro.study.chapters: the chapters' summaries and their pointers to notebook 06's primary study."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from unet_repro.study import chapters as C
from unet_repro.study import ledger

ROOT = Path(__file__).resolve().parents[1]


def _row(**kw) -> dict:
    row = {
        "claim": "no_elastic",
        "change": "augmentation without elastic deformation",
        "expect": "hurts",
        "metric": "v_rand",
        "n_pairs": 3,
        "mean_diff": -0.0025804,
        "ci_low": -0.013958,
        "ci_high": 0.0087977,
        "verdict": "pending (3 of 10 seed pairs)",
    }
    return row | kw


def test_claim_status_sentence():
    text = C.claim_status(pd.DataFrame([_row()]), "no_elastic")
    assert text == (
        "`no_elastic`: augmentation without elastic deformation, expected to hurt; **pending (3 of 10 seed pairs)**, "
        "V_rand -0.003 [-0.014, +0.009] over 3 seed pairs"
    )


@pytest.mark.parametrize(
    ("verdict", "expect", "status"),
    [
        ("hurts", "hurts", "confirmed at our scale"),
        ("helps", "hurts", "contradicted at our scale"),
        ("no effect detected", "helps", "no effect detected at our scale"),
        ("no effect larger than 0.02", "helps", "no effect larger than 0.02 at our scale"),
    ],
)
def test_claim_status_uses_the_ledgers_words(verdict, expect, status):
    row = _row(verdict=verdict, expect=expect)
    assert f"**{status}**" in C.claim_status(pd.DataFrame([row]), "no_elastic")
    assert ledger.status_of(pd.Series(row)) == status  # the README's ledger says the same


def test_claim_status_of_every_committed_claim_matches_the_ledger():
    primary = C.read_primary(ROOT)
    assert primary is not None and len(primary) >= 10
    for _, r in primary.iterrows():
        assert f"**{ledger.status_of(r)}**" in C.claim_status(primary, r["claim"])


def test_unknown_claim_and_no_table():
    primary = pd.DataFrame([_row()])
    with pytest.raises(ValueError, match="no_elastic"):
        C.claim_status(primary, "no_such_claim")
    assert "notebook 06" in C.claim_status(None, "no_elastic")


def test_read_primary_outside_a_checkout(tmp_path):
    assert C.read_primary(tmp_path) is None
    (tmp_path / "results").mkdir()
    pd.DataFrame([_row()]).to_csv(tmp_path / C.PRIMARY, index=False)
    assert C.read_primary(tmp_path)["claim"].tolist() == ["no_elastic"]


def test_claims_markdown_lists_each_claim_with_the_studys_scale():
    primary = pd.DataFrame([_row(scale="8 channels, 1000 steps, CPU"), _row(claim="adam", scale="8 channels")])
    text = C.claims_markdown(primary, ["adam", "no_elastic"])
    head, blank, *lines = text.splitlines()
    assert "8 channels, 1000 steps, CPU" in head and blank == ""
    assert [ln.split("`")[1] for ln in lines] == ["adam", "no_elastic"]
    assert all(ln.startswith("- ") for ln in lines)
    assert C.claims_markdown(None, ["adam"]).count("notebook 06") == 2


def test_summary_has_three_lines():
    text = C.summary_markdown("a.", "b.", "c.")
    assert text.splitlines() == ["**The paper claims** a.  ", "**We found** b.  ", "**Scale:** c."]
