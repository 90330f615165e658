"""The Blender add-on as a user gets it: the linux-x64 extension zip built by build_addon.py,
installed headless into bpy 5.0.1 with Blender's install-from-disk operator, exercised there.

The zip is built and installed once per session; the checks are grouped into a few Blender
subprocesses (module-scoped fixtures) and each test asserts one behaviour on their results.
"""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import blender_run
from tests.blender_run import BlenderUser

pytest.importorskip("bpy", reason="bpy 5.0.1 is a dev requirement: run bash scripts/setup_env.sh")

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "addon-test"
CLIP_SECONDS = 1.5
CLIP_FPS = 30


@pytest.fixture(scope="session")
def addon_zip() -> Path:
    """The linux-x64 zip, rebuilt each session from the tree (wheels come from build/wheels)."""
    import build_addon

    if sys.platform != "linux":
        pytest.skip("the test zip is linux-x64")
    return build_addon.build_platform(build_addon.PLATFORMS["linux-x64"], BUILD)


@pytest.fixture(scope="session")
def demo_clip() -> Path:
    """A short demo clip (astronaut photo, head motion, a hand passing) made for the session."""
    from training.demo_clip import ClipOptions, write_demo_clip

    return write_demo_clip(BUILD / "demo_clip.mp4", ClipOptions(seconds=CLIP_SECONDS, fps=CLIP_FPS))


@pytest.fixture(scope="session")
def blender_user(tmp_path_factory, addon_zip) -> BlenderUser:
    root = tmp_path_factory.mktemp("blender_user")
    user = BlenderUser(root=root, site=blender_run.blender_site(root / "blender_site"))
    user.installed = blender_run.install(user, addon_zip)
    return user


# --- install ---------------------------------------------------------------------------------

def test_zip_installs_with_blenders_install_from_disk_operator(blender_user):
    assert blender_user.installed["install"] == ["FINISHED"]


def test_installed_module_lies_in_the_isolated_extensions_folder(blender_user):
    module_file = Path(blender_user.installed["module_file"])
    assert module_file == blender_user.addon_dir / "__init__.py"
