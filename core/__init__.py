"""maskcap's engine: face model, fitting, segmentation and tracking, with no Blender import.

Submodules import each other relatively, so this package works from the repository root
and when vendored inside the Blender add-on. Heavy names load lazily on first use.
"""
from __future__ import annotations

import importlib

from .face.facs import (
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
    "FaceModel": "face.face_model",
    "load_face_model": "face.face_model",
    "default_face_model_path": "face.face_model",
    "FaceModelError": "face.face_model",
    "FitResult": "face.fitting",
    "FitOptions": "face.fitting",
    "fit_landmarks": "face.fitting",
    "fit_identity_focal": "face.fitting",
    "focal_from_mm": "face.camera",
    "FaceSegmenter": "segment.segmentation",
    "SegmenterOptions": "segment.segmentation",
    "SegmentationResult": "segment.segmentation",
    "SegmenterModelError": "segment.segmentation",
    "FaceDetector": "detect.detection",
    "DetectorOptions": "detect.detection",
    "detect_faces": "detect.detection",
    "detect_all_faces": "detect.cnn",
    "CnnFaceDetector": "detect.cnn",
    "CnnDetectorOptions": "detect.cnn",
    "DetectedFace": "detect.cnn",
    "Box": "detect.cnn",
    "MultiFaceDetector": "detect.detection",
    "MultiFaceOptions": "detect.detection",
    "FaceMask": "segment.segmentation",
    "merge_face_masks": "segment.segmentation",
    "AnonymizeOptions": "masks.anonymize",
    "anonymize_faces": "masks.anonymize",
    "anonymize_clip": "masks.batch",
    "as_bgr_uint8": "io.image_input",
    "FaceTracker": "track.tracker",
    "TrackerOptions": "track.tracker",
    "TrackResult": "track.tracker",
    "RunningMode": "track.tracker",
    "StillPhotoOptions": "track.tracker",
    "Pipeline": "track.pipeline",
    "open_source": "io.sources",
    "SourceError": "io.sources",
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
