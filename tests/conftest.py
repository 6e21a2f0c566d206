"""Shared test fixtures: the ISBI 2012 stack, found where ``unet_repro.data.isbi2012`` finds it.

``load_isbi2012()`` looks in ``$UNET_REPRO_DATA``, then in the user cache (``~/.cache/unet-repro/isbi2012``),
and downloads into the cache when the files are missing. The ``isbi`` fixture tries that once per test
session. When the stack cannot be had, the tests that need it are skipped with the reason, except under
CI (``CI=true``), where that is a failure: CI never skips them silently.
"""

from __future__ import annotations

import os

import pytest

_LOADED: dict[str, object] = {}


def data_unavailable(reason: str) -> None:
    """Skip the current test because the ISBI 2012 stack is missing, or fail under ``CI=true``."""
    message = f"ISBI 2012 data not available: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the data tests must run)", pytrace=False)
    pytest.skip(
        f"{message}. Set UNET_REPRO_DATA to a folder holding the three TIFFs, or run once with network "
        "access to fill the user cache"
    )


@pytest.fixture(scope="session")
def isbi():
    """The ISBI 2012 volumes (train images, labels, test images): one load (or download) attempt per session."""
    from unet_repro.data.isbi2012 import DataError, load_isbi2012

    if not _LOADED:
        try:
            _LOADED["data"] = load_isbi2012()
        except DataError as exc:
            _LOADED["error"] = str(exc).splitlines()[0].rstrip(".")
    if "error" in _LOADED:
        data_unavailable(str(_LOADED["error"]))
    return _LOADED["data"]
