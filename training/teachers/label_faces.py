"""Label a folder of face images with a 68-point teacher (dlib or MediaPipe) into one JSON file.

Run in the teacher's own venv (training/teachers/setup_envs.sh), e.g.
  .venv-dlib/bin/python training/teachers/label_faces.py --teacher dlib
  .venv-dlib/bin/python training/teachers/label_faces.py --teacher dlib --images landmarks68/train
Points are 0-based pixel-centre coordinates (x right, y down), 68 in iBUG order, as in
landmarks68/SOURCE.md. Faces the teacher misses are listed under "no_face", never dropped.
Default output: build/teachers/<folder>_<teacher>.json, written atomically; reruns reuse it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MP_IRIS_CENTRES = (468, 473)  # FaceMesh refine_landmarks: image-left iris, image-right iris


def data_root() -> Path:
    return Path(os.environ.get("MASKCAP_DATA", REPO.parent / "shared" / "data"))


def write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


class DlibTeacher:
    name = "dlib"

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def label(self, rgb: np.ndarray) -> dict | None:
        boxes, scores, _ = self.detector.run(rgb, 1, 0.0)
        if not boxes:
            return None
        k = int(np.argmax([b.area() for b in boxes]))
        b = boxes[k]
        shape = self.predictor(rgb, b)
        pts = [[float(shape.part(i).x), float(shape.part(i).y)] for i in range(68)]
        return {"points68": pts, "box": [b.left(), b.top(), b.right(), b.bottom()],
                "detector": "dlib_hog", "confidence": float(scores[k]), "faces": len(boxes)}


class MediaPipeTeacher:
    name = "mediapipe"

    def __init__(self) -> None:
        import mediapipe as mp

        self.mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                    refine_landmarks=True, min_detection_confidence=0.5)

    def label(self, rgb: np.ndarray) -> dict | None:
        res = self.mesh.process(rgb)
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        # normalised [0,1] image coordinates are edge-based: pixel-centre x = u * w - 0.5
        pts = np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in res.multi_face_landmarks[0].landmark])
        lo, hi = pts.min(0), pts.max(0)
        return {"points68": None, "points478": pts.round(2).tolist(),
                "iris_centres": pts[list(MP_IRIS_CENTRES)].round(2).tolist(),
                "box": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])],
                "detector": "mediapipe_facemesh", "confidence": None, "faces": 1}


TEACHERS = {"dlib": DlibTeacher, "mediapipe": MediaPipeTeacher}


def nme(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point-to-point error / distance between the outer eye corners (36, 45) of the truth."""
    return float(np.linalg.norm(points - truth, axis=1).mean() / np.linalg.norm(truth[36] - truth[45]))


def score_on_landmarks68(labels_path: Path) -> dict:
    """The teacher's NME against the human points of landmarks68/train: overall, by subset, every 10th name."""
    meta = json.loads((data_root() / "landmarks68" / "landmarks.json").read_text())
    truth = {Path(im["file"]).name: im for im in meta["images"] if im["split"] == "train"}
    labels = json.loads(labels_path.read_text())["images"]
    names = sorted(truth)
    held_out = set(names[::10])
    groups: dict[str, list] = {"all": [], "every_10th": []}
    for name in names:
        lab = labels.get(name)
        err = nme(np.asarray(lab["points68"]), np.asarray(truth[name]["points"])) if lab else None
        for g in ("all", truth[name]["subset"]) + (("every_10th",) if name in held_out else ()):
            groups.setdefault(g, []).append(err)
    report = {}
    for g, errs in groups.items():
        found = np.array([e for e in errs if e is not None])
        report[g] = {"faces": len(errs), "detected": len(found), "detection_rate": len(found) / len(errs),
                     "nme_mean": float(found.mean()), "nme_median": float(np.median(found)),
                     "over_10pct": int((found > 0.10).sum())}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", choices=sorted(TEACHERS), default="dlib")
    parser.add_argument("--images", default="lfw_unlabeled", help="folder under the data root (or a path)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--score", type=Path, default=None,
                        help="print the NME of a labels file of landmarks68/train against the human points")
    args = parser.parse_args()
    if args.score:
        print(json.dumps(score_on_landmarks68(args.score), indent=1))
        return
    folder = Path(args.images) if Path(args.images).is_absolute() else data_root() / args.images
    if "videos" in folder.parts:
        sys.exit("videos/ are for demos and tests only, not for training labels (data README)")
    files = sorted(p.name for p in folder.iterdir()
                   if p.suffix.lower() in (".jpg", ".png") and not p.stem.startswith("preview"))
    tag = "_".join(Path(args.images).parts[-2:]) if not Path(args.images).is_absolute() else folder.name
    out = args.out or REPO / "build" / "teachers" / f"{tag}_{args.teacher}.json"
    done = json.loads(out.read_text()) if out.exists() else {"images": {}, "no_face": []}
    labels = {f: lab for f, lab in done["images"].items() if f in set(files)}
    no_face = set(done["no_face"]) & set(files)
    from PIL import Image

    teacher = TEACHERS[args.teacher]()
    t0 = time.time()
    todo = [f for f in files if f not in labels and f not in no_face]
    for k, name in enumerate(todo, 1):
        rgb = np.asarray(Image.open(folder / name).convert("RGB"))
        lab = teacher.label(rgb)
        if lab is None:
            no_face.add(name)
        else:
            labels[name] = lab
        if k % 100 == 0 or k == len(todo):
            print(f"\r{args.teacher}: {k}/{len(todo)} ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
            if k % 500 == 0:
                write_json_atomic(out, {"meta": {}, "images": labels, "no_face": sorted(no_face)})
    print(file=sys.stderr)
    meta = {"teacher": args.teacher, "folder": str(folder), "count": len(files), "labelled": len(labels),
            "no_face": len(no_face), "convention": "0-based pixel centres, x right, y down, iBUG 68 order"}
    write_json_atomic(out, {"meta": meta, "images": labels, "no_face": sorted(no_face)})
    print(f"{len(labels)}/{len(files)} labelled, {len(no_face)} without a face -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
