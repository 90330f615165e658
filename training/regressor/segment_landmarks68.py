"""The segmenter's face masks of the regressor's training images, as it sees faces at run time.

Run: .venv/bin/python -m training.regressor.segment_landmarks68
       (landmarks68, annotated landmarks -> build/landmarks68_cnn_masks)
     .venv/bin/python -m training.regressor.segment_landmarks68 --images lfw_unlabeled \
       --fits build/teachers/lfw_unlabeled_fits.npz --out build/teachers/lfw_unlabeled_cnn_masks
       (any folder, landmarks of a fits file such as training.teachers.fit_teacher_labels writes)
Writes <out>/<image stem>.png (255 = face), segmenting each image in the face box around its
landmarks, as the tracker does around its tracked shape.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from core.io.files import write_image
from core.segment.segmentation import FaceSegmenter
from core.track.tracker import face_box_from_landmarks

from training.regressor.fit_landmarks68 import load_samples
from evaluation.paths import BUILD_DIR, require_data


def images_and_landmarks(fits: Path | None) -> list[tuple[str, np.ndarray]]:
    """(file name, 68 landmarks) of the landmarks68 annotations, or of a fits file's images."""
    if fits is None:
        return [(s.file, s.landmarks) for s in load_samples()]
    with np.load(fits) as z:
        return [(str(f), p.astype(np.float64)) for f, p in zip(z["files"], z["landmarks"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="landmarks68", help="image folder under the shared data")
    parser.add_argument("--fits", type=Path, default=None,
                        help="take file names and landmarks from this fits file (default: landmarks68's annotations)")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "landmarks68_cnn_masks")
    parser.add_argument("--segmenter", type=Path, default=None,
                        help="a segmenter file other than models/segmenter.onnx (a candidate and its regressor)")
    args = parser.parse_args()
    root = require_data(args.images)
    items = images_and_landmarks(args.fits)
    with FaceSegmenter(args.segmenter) as segmenter:
        for k, (name, points) in enumerate(items, 1):
            image = cv2.imread(str(root / name))
            if image is None:
                raise FileNotFoundError(f"cannot read image {root / name}")
            mask = segmenter.segment(image, box=face_box_from_landmarks(points))
            write_image(args.out / (Path(name).stem + ".png"), mask * 255)
            if k % 100 == 0 or k == len(items):
                print(f"\rsegmented {k}/{len(items)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
