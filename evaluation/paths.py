"""Where the shared data and the build outputs live, for the offline scripts and tests."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "build"


def shared_data_dir() -> Path:
    """../shared/data beside the repository, or $MASKCAP_DATA when set."""
    override = os.environ.get("MASKCAP_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def require_data(subfolder: str) -> Path:
    """The path of a shared data set, or a clear error saying where it was looked for."""
    path = shared_data_dir() / subfolder
    if not path.exists():
        raise FileNotFoundError(
            f"shared data set {subfolder!r} not found at {path}; put ../shared/data beside the "
            "repository or set MASKCAP_DATA")
    return path
