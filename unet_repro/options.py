"""The package's option strings, each defined once: the configuration, the command lines and the grids read
them here (as a ``Literal`` type for annotations and a tuple for checks and ``argparse`` choices).

Imports nothing heavy (no torch, no numpy): a command line or a grid checks an option before any network loads.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "TTA",
    "TTA_MODES",
    "Schedule",
    "SCHEDULES",
    "Optimizer",
    "OPTIMIZERS",
    "Amp",
    "AMP_MODES",
    "AUGMENT_MODES",
    "Profile",
    "PROFILES",
    "DEFAULT_PROFILE",
]

#: test-time averaging (section 3.3): none, 4 rotations, or 4 rotations x a flip
TTA = Literal["none", "rot4", "d4"]
TTA_MODES: tuple[str, ...] = get_args(TTA)
#: the learning-rate schedule after warm-up (the paper gives none)
Schedule = Literal["constant", "cosine", "poly"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)
#: the optimiser: SGD with the paper's momentum 0.99, or Adam
Optimizer = Literal["sgd", "adam"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
#: mixed precision (an option, not the paper): off, bf16, fp16, or what the device supports
Amp = Literal["off", "bf16", "fp16", "auto"]
AMP_MODES: tuple[str, ...] = get_args(Amp)
#: ``TrainConfig.augment``: all of section 3.1, none of it, or one of its two parts
AUGMENT_MODES = (True, False, "no_elastic", "elastic_only")
#: the training profiles (``unet_repro.training.config.PROFILE_CONFIGS``) and the one CI and ``make`` use by default
Profile = Literal["ci", "cpu", "paper"]
PROFILES: tuple[str, ...] = get_args(Profile)
DEFAULT_PROFILE: Profile = "ci"
