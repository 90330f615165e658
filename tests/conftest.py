"""Markers by what a test needs, and the add-on tests' fixtures: one zip and one demo clip per session.

    pytest -m "not blender and not data"   # the engine alone, no Blender, no ../shared/data
    bash scripts/test.sh --training        # the PyTorch training tests, in .venv-train
"""
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


BLENDER_MODULES = {"test_addon_installed", "test_addon_blenders"}
DATA_MODULES = {"test_detection", "test_face_model", "test_facs", "test_fitting", "test_robustness",
                "test_segmentation", "test_take", "test_tracker", "test_addon_installed"}


def pytest_collection_modifyitems(config, items):
    """blender: headless Blender against the installed zip; data: reads ../shared/data (skips
    without it); training: needs PyTorch, which only .venv-train has."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in BLENDER_MODULES:
            item.add_marker(pytest.mark.blender)
        if module in DATA_MODULES:
            item.add_marker(pytest.mark.data)
        code = getattr(getattr(item, "function", None), "__code__", None)
        if code is not None and "torch" in code.co_varnames + code.co_names + code.co_consts:
            item.add_marker(pytest.mark.training)


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
def addon_zips(work_dir) -> dict:
    """The linux-x64 zips by Blender range ("4.2": Blender 4.2 to 5.0, Python 3.11; "5.1": 5.1 and
    newer, Python 3.13), rebuilt each session from the tree (wheels come from build/wheels)."""
    import build_addon

    if sys.platform != "linux":
        pytest.skip("the test zips are linux-x64")
    return {name: build_addon.build_platform(build_addon.PLATFORMS["linux-x64"], work_dir, blender=blender)
            for name, blender in build_addon.BLENDER_RANGES.items()}


@pytest.fixture(scope="session")
def addon_zip(addon_zips) -> Path:
    """The zip for Blender 4.2 to 5.0 (what bpy 5.0.1 in .venv installs)."""
    return addon_zips["4.2"]


@pytest.fixture(scope="session")
def demo_clip(work_dir) -> Path:
    """A short demo clip (astronaut photo, head motion, a hand passing) made for the session."""
    from examples.demo_clip import ClipOptions, write_demo_clip

    return write_demo_clip(work_dir / "demo_clip.mp4", ClipOptions(seconds=CLIP_SECONDS, fps=CLIP_FPS))
