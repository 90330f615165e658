"""maskcap's engine: face model, fitting, segmentation and tracking, with no Blender import.

Submodules import each other relatively, so this package works from the repository root
and when vendored inside the Blender add-on. Heavy names load lazily on first use.
"""
from __future__ import annotations

import importlib

from .facs import (
    ARKIT_NAMES,
    ARKIT_TO_FACS,
    EXTRA_ARKIT_NAMES,
    EXTRA_NAMES,
    FACS_NAMES,
    FACS_TO_ARKIT,
    FACS_TO_ICT,
    NUM_FACS,
)

# public name -> submodule that defines it (imported on first access)
_LAZY = {
    "FaceModel": "face_model",
    "load_face_model": "face_model",
    "default_face_model_path": "face_model",
    "FaceModelError": "face_model",
    "FitResult": "fitting",
    "FitOptions": "fitting",
    "fit_landmarks": "fitting",
    "fit_identity_focal": "fitting",
    "focal_from_mm": "camera",
    "FaceSegmenter": "segmentation",
    "SegmenterOptions": "segmentation",
    "SegmentationResult": "segmentation",
    "SegmenterModelError": "segmentation",
    "FaceDetector": "detection",
    "DetectorOptions": "detection",
    "detect_faces": "detection",
    "detect_all_faces": "detection",
    "MultiFaceDetector": "detection",
    "MultiFaceOptions": "detection",
    "FaceMask": "segmentation",
    "merge_face_masks": "segmentation",
    "AnonymizeOptions": "anonymize",
    "anonymize_faces": "anonymize",
    "anonymize_clip": "batch",
    "as_bgr_uint8": "image_input",
    "FaceTracker": "tracker",
    "TrackerOptions": "tracker",
    "TrackResult": "tracker",
    "Pipeline": "pipeline",
    "open_source": "sources",
    "SourceError": "sources",
}

__all__ = [
    "ARKIT_NAMES", "ARKIT_TO_FACS", "EXTRA_ARKIT_NAMES", "EXTRA_NAMES", "FACS_NAMES",
    "FACS_TO_ARKIT", "FACS_TO_ICT", "NUM_FACS", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
