"""Shared test fixtures: the ISBI 2012 data from ../shared (never downloaded from the internet)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "isbi2012"
SHARED_SPEC = ROOT.parent / "shared" / "spec" / "isbi2012-metrics"

if not os.environ.get("UNET_REPRO_DATA") and SHARED_DATA.is_dir():
    os.environ["UNET_REPRO_DATA"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def isbi():
    """The ISBI 2012 volumes (train images, labels, test images) from $UNET_REPRO_DATA."""
    from unet_repro.data import load_isbi2012

    try:
        return load_isbi2012()
    except Exception as exc:  # pragma: no cover - reported, not hidden
        pytest.fail(f"ISBI 2012 data not available for tests: {exc}")


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The challenge-metric conventions and test vectors."""
    if not SHARED_SPEC.is_dir():
        pytest.fail(f"{SHARED_SPEC} is missing: the metric tests need ../shared/spec beside the checkout")
    return SHARED_SPEC
