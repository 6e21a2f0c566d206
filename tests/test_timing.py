"""Tests of unet_repro.study.timing: methods timed round robin, the order rotating from round to round."""

from __future__ import annotations

import pytest

from unet_repro.study.timing import interleaved_times


def test_rounds_rotate_and_warmup_is_not_timed():
    calls: list[str] = []
    methods = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    times = interleaved_times(methods, rounds=3, warmup=1)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for v in times.values() for t in v)


@pytest.mark.parametrize(("methods", "rounds", "warmup"), [({}, 1, 0), ({"a": int}, 0, 0), ({"a": int}, 1, -1)])
def test_bad_arguments(methods, rounds, warmup):
    with pytest.raises(ValueError, match="rounds"):
        interleaved_times(methods, rounds, warmup)
