"""Shared test fixtures' building blocks: where the shared data is, and skipping without it."""
from __future__ import annotations

import pytest

from training.paths import shared_data_dir


def data_or_skip(subfolder: str):
    """The path of a shared data set, or skip the test saying what is missing."""
    path = shared_data_dir() / subfolder
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{subfolder} (not found at {path}); set MASKCAP_DATA to run")
    return path
