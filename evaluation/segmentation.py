"""Evaluate the face segmenter on a folder of image + label pairs (the paper's metrics).

    .venv/bin/python -m evaluation.segmentation                       # lfw_parts validation
    .venv/bin/python -m evaluation.segmentation FOLDER --variant fcn deconv fused fused+graphcut \\
        --occlusion none hand rectangle --json out.json

FOLDER holds <name>.jpg with <name>.png in the lfw_parts format (face = label 1), or use
--format celebamask for celebamask_mini (images/ + labels/, 19 classes, split from sources.csv).
Metrics, computed at the image's full resolution:
  mean IoU   mean over images of the face IoU (an image with no face in either counts as 1);
  global     share of all pixels labelled correctly (face vs not face);
  ave(face)  share of all face pixels found (face recall).
The box is the bounding box of the un-occluded face label (what a tracker provides), or with
--box detect the Viola-Jones face (no detection = an empty mask). Synthetic occlusions are
seeded per image, so every run and every variant sees the same occluders.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from core.io.files import write_text
from core.segment.segmentation import FaceSegmenter, SegmenterOptions, streams_model_path
from training.segmenter.data import (celebamask_source, data_dir, label_folder_source, load_hands,
                                        occlude_for_evaluation, CELEBAMASK_EARS, _read_label)

VARIANTS = ("fcn", "deconv", "fused", "fused+graphcut")
OCCLUSIONS = ("none", "hand", "rectangle", "skinhand")


def per_crop_iou(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of each crop's boolean masks (N, H, W); 1 where both are empty."""
    inter, union = (pred & target).sum((1, 2)), (pred | target).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def segmenter_for(variant: str, model_path=None, mirror_average: bool = False) -> FaceSegmenter:
    """The segmenter of a Table 1 variant; a one-stream variant reads the model's streams sibling."""
    stream = variant.split("+")[0]
    if model_path is not None and stream != "fused":
        model_path = streams_model_path(model_path)
    return FaceSegmenter(model_path, SegmenterOptions(stream=stream, graph_cut=variant.endswith("+graphcut"),
                                                      mirror_average=mirror_average))


def label_box(face: np.ndarray):
    ys, xs = np.nonzero(face)
    if len(xs) == 0:
        return None
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


class Scores:
    """Accumulates the three metrics; `ignore` pixels count for nothing."""

    def __init__(self):
        self.ious, self.correct, self.total, self.tp, self.gt_face, self.union = [], 0, 0, 0, 0, 0

    def add(self, pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None):
        valid = np.ones_like(gt, bool) if ignore is None else ~ignore
        p, g = pred.astype(bool) & valid, gt.astype(bool) & valid
        inter, union = int((p & g).sum()), int((p | g).sum())
        self.ious.append(inter / union if union else 1.0)
        self.correct += int(((p == g) & valid).sum())
        self.total += int(valid.sum())
        self.tp += inter
        self.gt_face += int(g.sum())
        self.union += union

    def result(self) -> dict:
        return {"mean_iou": float(np.mean(self.ious)), "global": self.correct / max(self.total, 1),
                "ave_face": self.tp / max(self.gt_face, 1), "pooled_iou": self.tp / max(self.union, 1),
                "images": len(self.ious)}


def load_samples(folder, fmt: str, limit: int | None):
    """[(name, image, face, ignore)] of the evaluation set."""
    if fmt == "lfw":
        source = label_folder_source(folder)
        get = lambda i: (*source.load(i), None)
    else:
        split = "val" if folder is None else str(folder)
        source = celebamask_source(split, ears=True)
        root = data_dir() / "celebamask_mini"

        def get(i):
            image, face = source.load(i)
            ears = np.isin(_read_label(root / "labels" / f"{Path(source.items[i]).stem}.png"), CELEBAMASK_EARS)
            return image, face, (ears if fmt == "celebamask_noears" else None)
    n = len(source) if limit is None else min(limit, len(source))
    return [(Path(str(source.items[i])).stem, *get(i)) for i in range(n)]


def evaluate(samples, variants=("fused+graphcut",), occlusions=("none",), box_mode="label",
             seed: int = 0, model_path=None, mirror_average: bool = False) -> dict:
    hands = load_hands() if {"hand", "skinhand"} & set(occlusions) else []
    results = {}
    for occlusion in occlusions:
        cases = []
        for k, (name, image, face, ignore) in enumerate(samples):
            box = label_box(face) if box_mode == "label" else None
            if occlusion != "none":
                image, face = occlude_for_evaluation(image, face, seed * 100003 + k, hands, occlusion)
            cases.append((image, face, ignore, box))
        for variant in variants:
            scores, seconds = Scores(), 0.0
            with segmenter_for(variant, model_path, mirror_average) as segmenter:
                for image, face, ignore, box in cases:
                    t0 = time.perf_counter()
                    if box is None and box_mode == "label":
                        pred = np.zeros_like(face)
                    else:
                        pred = segmenter.segment(image, box)
                    seconds += time.perf_counter() - t0
                    scores.add(pred, face, ignore)
            res = scores.result()
            res["ms_per_image"] = 1000.0 * seconds / max(len(cases), 1)
            results[f"{variant}|{occlusion}"] = res
            print(f"{variant:16s} occlusion={occlusion:9s} mean IoU {res['mean_iou']:.4f}  global {res['global']:.4f}"
                  f"  ave(face) {res['ave_face']:.4f}  ({res['images']} images, {res['ms_per_image']:.1f} ms each)",
                  flush=True)
    return results


def write_json_atomic(path: Path, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=None,
                    help="folder of <name>.jpg + <name>.png (default: lfw_parts/validation); "
                         "for --format celebamask*, the split name (default val)")
    ap.add_argument("--format", choices=("lfw", "celebamask", "celebamask_noears"), default="lfw")
    ap.add_argument("--variant", nargs="+", choices=VARIANTS, default=["fused+graphcut"])
    ap.add_argument("--occlusion", nargs="+", choices=OCCLUSIONS, default=["none"])
    ap.add_argument("--box", choices=("label", "detect"), default="label")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--mirror", action="store_true", help="average each map with the mirrored crop's (SegmenterOptions.mirror_average)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    folder = args.folder
    if args.format == "lfw" and folder is None:
        folder = data_dir() / "lfw_parts" / "validation"
    samples = load_samples(folder, args.format, args.limit)
    results = evaluate(samples, args.variant, args.occlusion, args.box, args.seed, args.model,
                       args.mirror)
    if args.json:
        write_json_atomic(args.json, {"folder": str(folder), "format": args.format, "box": args.box,
                                      "seed": args.seed, "results": results})
    return results


if __name__ == "__main__":
    main()
