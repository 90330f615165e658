"""Fixtures shared by the add-on's tests on Blender 5.0 and 4.2: one zip and one demo clip per session."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "addon-test"
CLIP_SECONDS = 2.0
CLIP_FPS = 30


@pytest.fixture(scope="session")
def work_dir() -> Path:
    """This session's folder in build/ (not pytest's temporary folders, which a concurrent pytest
    run may rotate away mid-session; per process, so that two runs in one tree do not collide).
    Removed at the end: the installed add-on alone is about 620 MB."""
    folder = BUILD / f"session-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def addon_zip(work_dir) -> Path:
    """The linux-x64 zip, rebuilt each session from the tree (wheels come from build/wheels)."""
    import build_addon

    if sys.platform != "linux":
        pytest.skip("the test zip is linux-x64")
    return build_addon.build_platform(build_addon.PLATFORMS["linux-x64"], work_dir)


@pytest.fixture(scope="session")
def demo_clip(work_dir) -> Path:
    """A short demo clip (astronaut photo, head motion, a hand passing) made for the session."""
    from training.demo_clip import ClipOptions, write_demo_clip

    return write_demo_clip(work_dir / "demo_clip.mp4", ClipOptions(seconds=CLIP_SECONDS, fps=CLIP_FPS))
