"""The engine package: `core/` vendored inside the add-on by build_addon.py.

In the source tree (development, or pytest run from the repository) the add-on has no vendored
copy, and the repository's top-level `core` package is used instead. Light modules load at
register time; the tracker's (numba, ONNX Runtime) only when a bake or live session starts.
"""
import importlib

try:
    from . import core  # the installed extension
except ImportError:  # pragma: no cover - source tree only
    import core

from importlib import import_module as _import

camera = _import(core.__name__ + ".camera")
filters = _import(core.__name__ + ".filters")
head_pose = _import(core.__name__ + ".head_pose")
retarget = _import(core.__name__ + ".retarget")


def load(name: str):
    """A core submodule by name, imported on first use (e.g. load("take"))."""
    return importlib.import_module(f"{core.__name__}.{name}")
