"""The segmenter's face masks for the landmarks68 images, for training the regressor on them.

Run: .venv/bin/python -m training.segment_landmarks68
Writes build/landmarks68_cnn_masks/<image stem>.png (255 = face), segmenting each image in the
face box around its annotated landmarks, as the tracker does around its tracked shape.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from core.files import write_image
from core.segmentation import FaceSegmenter
from core.tracker import face_box_from_landmarks

from .fit_landmarks68 import load_samples
from .paths import BUILD_DIR, require_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "landmarks68_cnn_masks")
    args = parser.parse_args()
    root = require_data("landmarks68")
    samples = load_samples()
    with FaceSegmenter() as segmenter:
        for k, s in enumerate(samples, 1):
            image = cv2.imread(str(root / s.file))
            mask = segmenter.segment(image, box=face_box_from_landmarks(s.landmarks))
            write_image(args.out / (Path(s.file).stem + ".png"), mask * 255)
            if k % 100 == 0 or k == len(samples):
                print(f"\rsegmented {k}/{len(samples)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
