"""Run a script in headless Blender (bpy 5.0.1, 4.2.0 or 5.2.3, as a module) against the INSTALLED maskcap extension.

Each run is a subprocess of .venv's Python that sees only what Blender itself ships (bpy, numpy
and bpy's own requirements, linked into a small site folder) and an isolated Blender user folder
(BLENDER_USER_* variables, which bpy 5.0.1 honours), so that scipy, OpenCV, ONNX Runtime, numba
and PyMaxflow can only come from the wheels inside the extension zip and the add-on only from the
extension folder, never from the source tree. The script fills a dict RESULT, printed as JSON.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
MODULE = "bl_ext.user_default.maskcap"
RESULT_MARKER = "MASKCAP_RESULT "

# Helpers every script gets: the enabled add-on as `pkg`, and readers of its effects.
PRELUDE = f'''
import importlib, json, sys, threading, traceback
import bpy
MODULE = {MODULE!r}

def enable():
    bpy.ops.preferences.addon_enable(module=MODULE)
    return sys.modules[MODULE]

def error_of(call, *args, **kwargs):
    """The message of a failing operator (bpy.ops raises RuntimeError in background mode), or None."""
    try:
        call(*args, **kwargs)
    except RuntimeError as exc:
        return str(exc)
    return None

def fcurves(id_data):
    """data_path, index -> list of (frame, value) of an ID's action (slotted from Blender 4.4 on)."""
    from bpy_extras import anim_utils
    ad = id_data.animation_data
    if ad is None or ad.action is None:
        return {{}}
    if hasattr(anim_utils, "action_get_channelbag_for_slot"):
        bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    else:  # Blender 4.2-4.3: an action holds its F-curves itself
        bag = ad.action
    if bag is None:
        return {{}}
    return {{f"{{fc.data_path}}[{{fc.array_index}}]": [tuple(k.co) for k in fc.keyframe_points] for fc in bag.fcurves}}

def render_still(frame, path):
    """The composited scene at frame, one Cycles sample on the CPU, written to path."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.frame_set(frame)
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)

def maskcap_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("maskcap")]

pkg = enable()
'''

EPILOGUE = f'''
print({RESULT_MARKER!r} + json.dumps(RESULT), flush=True)
'''


class BlenderRunError(AssertionError):
    """The Blender subprocess failed or printed no result."""


@dataclass
class BlenderUser:
    """An isolated Blender user folder, the folder of Blender-shipped packages, and what the
    install reported."""

    root: Path
    site: Path
    installed: dict = field(default_factory=dict)
    python: str = sys.executable  # the Python that has this Blender's bpy
    # bpy 4.2 as a module crashes at interpreter exit whenever any Panel class is still registered
    # (bpy_class_free after finalisation; a three-line script with one Panel does it): end those
    # runs with os._exit once the result is printed.
    hard_exit: bool = False

    @property
    def extensions(self) -> Path:
        return self.root / "extensions"

    @property
    def addon_dir(self) -> Path:
        return self.extensions / "user_default" / "maskcap"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDER_", "PYTHON"))}
        env.update(
            BLENDER_USER_RESOURCES=str(self.root / "resources"),
            BLENDER_USER_CONFIG=str(self.root / "config"),
            BLENDER_USER_SCRIPTS=str(self.root / "scripts"),
            BLENDER_USER_EXTENSIONS=str(self.extensions),
            BLENDER_USER_DATAFILES=str(self.root / "datafiles"),
            PYTHONPATH=str(self.site),
            PYTHONNOUSERSITE="1",
            OPENBLAS_NUM_THREADS="1",
            NUMBA_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
        )
        return env


def blender_site(folder: Path) -> Path:
    """A folder linking what Blender's own Python ships (bpy, numpy and bpy's requirements,
    recursively), and nothing else of .venv."""
    folder.mkdir(parents=True, exist_ok=True)
    todo, seen = ["bpy"], set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
                continue
            source = Path(dist.locate_file(top))
            link = folder / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return folder


BPY42_VENV = ROOT / ".venv-bpy42"
BPY52_VENV = ROOT / ".venv-bpy52"


def venv_site(venv: Path) -> Path | None:
    """site-packages of a venv holding bpy and what that Blender ships, nothing else (.venv-bpy42:
    bpy 4.2.0 and numpy 1.26.4; .venv-bpy52: bpy 5.2.3 and numpy 2.3.4), or None without bpy."""
    found = sorted(venv.glob("lib/python3.*/site-packages/bpy"))
    return found[0].parent if found else None


def bpy42_site() -> Path | None:
    return venv_site(BPY42_VENV)


def install(user: BlenderUser, zip_path: Path, timeout: float = 300, refused: Path | None = None) -> dict:
    """Install the zip with Blender's install-from-disk operator, enabled; return where it went.
    With `refused`, first try that zip (one for other Blender versions): RESULT["refused"] is the
    operator's error, if it raised one (4.2 prints the reason and finishes), and
    RESULT["refused_installed"] whether the package landed in the extensions folder anyway."""
    script = "import os, sys, bpy\n"
    if refused is not None:
        script += f'''
try:
    bpy.ops.extensions.package_install_files(filepath={str(refused)!r}, repo="user_default", enable_on_install=True)
    RESULT["refused"] = None
except RuntimeError as exc:
    RESULT["refused"] = str(exc)
RESULT["refused_installed"] = os.path.isdir({str(user.addon_dir)!r}) or {MODULE!r} in sys.modules
'''
    script += f'''
result = bpy.ops.extensions.package_install_files(filepath={str(zip_path)!r}, repo="user_default",
                                                  enable_on_install=True)
RESULT["install"] = sorted(result)
RESULT["module_file"] = sys.modules[{MODULE!r}].__file__
'''
    return _run(user, script, timeout)


def run(user: BlenderUser, body: str, timeout: float = 600, **variables) -> dict:
    """Run body (after PRELUDE, with the add-on enabled, and the given variables set from their
    repr) in Blender; return its RESULT dict."""
    assignments = "".join(f"{name} = {value!r}\n" for name, value in variables.items())
    return _run(user, PRELUDE + assignments + textwrap.dedent(body), timeout)


def _run(user: BlenderUser, script: str, timeout: float) -> dict:
    # -S: no .venv site-packages; cwd outside the repository so `import core` cannot succeed
    script = "import json\nRESULT = {}\n" + script + EPILOGUE
    if user.hard_exit:
        script += "import os, sys\nsys.stderr.flush()\nos._exit(0)\n"
    done = subprocess.run([user.python, "-S", "-c", script], cwd=user.root,
                          env=user.env(), capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        raise BlenderRunError(f"Blender run failed (exit {done.returncode})\n--- stdout\n{done.stdout[-4000:]}"
                              f"\n--- stderr\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_MARKER):])
    result["_stdout"], result["_stderr"] = done.stdout, done.stderr
    return result
