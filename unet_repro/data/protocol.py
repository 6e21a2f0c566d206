"""The evaluation protocol: which slices train, which choose, which report.

The ISBI 2012 challenge never published the labels of its 30 test slices, so every number this project
reports comes from its 30 labelled training slices. To keep those numbers honest the stack is cut into
three contiguous blocks (neighbouring sections are nearly identical, so a block, not a random subset):

- **train**: slices 0-19 while a choice is being made (learning rate, schedule, step count, recipe);
- **validation**: slices 20-24, the only block any choice looks at;
- **test**: slices 25-29, looked at by no choice but the one below; every reported number comes from here.

One choice is the exception: each reported metric takes its best threshold (0.0, 0.1, ..., 1.0) on the
block it is scored on, as the ISBI challenge server did for Table 1 of the paper, so a test number's
threshold comes from the test block. Notebook 04 also scores the final model at thresholds fixed on the
validation block (``results/04_fixed_thresholds.csv``, via ``unet_repro.metrics.Evaluation.scores_at``).

Final models of a profile may train on 0-24 (train + validation) once their recipe is fixed; the test
block is never trained on. Slice 24 and slice 25 are neighbours (about 50 nm apart in the EM stack), so a
model trained on 0-24 has seen a section much like the first test section; :data:`GAP` names the
alternative (train on 0-23, leaving slice 24 out as a gap), whose effect notebook 04 measures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Protocol", "PROTOCOL", "GAP", "check_training_slices"]


@dataclass(frozen=True)
class Protocol:
    """Slice blocks of the 30-slice ISBI 2012 training stack.

    Args:
        n_slices: slices in the labelled stack (30).
        validation: ``(first, stop)`` of the validation block.
        test: ``(first, stop)`` of the test block.
        gap: slices left out of final training next to the test block (none by default).
    """

    n_slices: int = 30
    validation: tuple[int, int] = (20, 25)
    test: tuple[int, int] = (25, 30)
    gap: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("validation", self.validation), ("test", self.test)):
            if not 0 <= lo < hi <= self.n_slices:
                raise ValueError(f"{name} block {(lo, hi)} must lie within 0..{self.n_slices}")
        if set(self.validation_slices) & set(self.test_slices):
            raise ValueError(f"validation {self.validation} and test {self.test} blocks overlap")

    @property
    def validation_slices(self) -> list[int]:
        return list(range(*self.validation))

    @property
    def test_slices(self) -> list[int]:
        return list(range(*self.test))

    def choosing_train_slices(self) -> list[int]:
        """Slices a run trains on while a choice is made: neither validation nor test (0-19)."""
        held = set(self.validation_slices) | set(self.test_slices)
        return [i for i in range(self.n_slices) if i not in held]

    def final_train_slices(self) -> list[int]:
        """Slices a final model trains on: everything but the test block and the gap (0-24)."""
        held = set(self.test_slices) | set(self.gap)
        return [i for i in range(self.n_slices) if i not in held]


#: The protocol used everywhere in this project.
PROTOCOL = Protocol()
#: The same protocol with slice 24 left out of final training (a gap before the test block).
GAP = Protocol(gap=(24,))


def check_training_slices(slices: Iterable[int], protocol: Protocol = PROTOCOL, *, choosing: bool = True) -> None:
    """Raise ``ValueError`` when a training set touches a block it must not see.

    Args:
        slices: training slice indices.
        protocol: the blocks.
        choosing: True while a choice is being made (validation is off limits too).
    """
    slices = list(slices)
    bad_range = [i for i in slices if not 0 <= i < protocol.n_slices]
    if bad_range:
        raise ValueError(f"training slices {bad_range} are outside 0..{protocol.n_slices - 1}")
    forbidden = set(protocol.test_slices) | (set(protocol.validation_slices) if choosing else set())
    bad = sorted(set(slices) & forbidden)
    if bad:
        which = "validation or test" if choosing else "test"
        raise ValueError(
            f"training slices {bad} belong to the {which} block; train on "
            f"{protocol.choosing_train_slices() if choosing else protocol.final_train_slices()} "
            "or a subset"
        )
