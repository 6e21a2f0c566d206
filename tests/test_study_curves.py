"""Reading and summarising held-out curves (``unet_repro.study.curves``): the figure title says what they show."""

from __future__ import annotations

import pandas as pd
import pytest

from unet_repro.study.curves import curve_headline, curve_summary


def _curves(short: list[float], long: list[float]) -> pd.DataFrame:
    rows = [
        {
            "name": name,
            "seed": 0,
            "iterations": 100 * len(v),
            "block": "validation",
            "step": 100 * (k + 1),
            "v_rand": x,
            "rand_error": 1 - x,
        }
        for name, v in (("long", long), ("short", short))
        for k, x in enumerate(v)
    ]
    return pd.DataFrame(rows)


def test_summary_finds_final_best_and_its_step_shortest_first():
    s = curve_summary(_curves([0.5, 0.6], [0.5, 0.9, 0.8, 0.7]))
    assert list(s.name) == ["short", "long"]
    assert s.iloc[1][["final", "best", "best_step"]].tolist() == [0.7, 0.9, 200]
    e = curve_summary(_curves([0.5, 0.6], [0.5, 0.9, 0.8, 0.7]), "rand_error")
    assert e.iloc[1].best == pytest.approx(0.1) and e.iloc[1].best_step == 200


@pytest.mark.parametrize(
    ("long", "says"), [([0.5, 0.9, 0.8, 0.7], "+0.100, better"), ([0.5, 0.45, 0.4], "-0.200, worse")]
)
def test_headline_gives_the_difference_and_its_direction(long, says):
    title = curve_headline(_curves([0.5, 0.6], long))
    assert says in title and "validation block" in title
