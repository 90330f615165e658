"""Train the DDE fern cascade on face-model fits of annotated faces (paper §5 "Training").

Run (after training.regressor.fit_landmarks68 and training.regressor.segment_landmarks68):
    .venv/bin/python -m training.regressor.train --masks-dir build/landmarks68_cnn_masks \
        [--source lfw_unlabeled] [--stages 10 --ferns 256 --depth 4]
Faces come from one or more sources, each with its images, its fits (training.regressor.fit_landmarks68.
save_targets arrays) and its face masks: landmarks68 always, with every 10th face (by sorted file
name) held out for validation; lfw_unlabeled adds the dlib-teacher-labelled LFW faces
(training/teachers/README.md), all for training. Trains on masked faces with one
occlusion-augmented copy each, writes models/regressor.npz and training/logs/regressor/{log.json, curve.png}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import Delaunay

from core.face.camera import focal_from_mm, head_rotation, principal_point, project
from core.face.face_model import load_face_model
from core.io.files import write_text
from core.track.regressor import (NUM_LANDMARKS, FernCascade, LandmarkModel, Q_DIM, ShapeState, Stage, apply_update,
                            difference, face_scale, landmarks, make_layout, mean_face_in_box, sample_features)

from training.regressor.ferns import train_ferns
from training.regressor.fit_landmarks68 import held_out, point_error
from evaluation.paths import BUILD_DIR, REPO_ROOT, require_data

MIN_FOCAL_PX = 200.0  # about 28 mm equivalent of a 256-pixel landmarks68 crop or a 250-pixel LFW frame


@dataclass(frozen=True)
class FaceSource:
    """Training faces of one data set: an image folder, the fits of its landmarks, face masks."""

    name: str
    images: Path
    fits: Path       # arrays of training.regressor.fit_landmarks68.save_targets
    masks: Path      # <image stem>.png, 255 = face
    terms: str
    validation: bool = False  # hold out every 10th face for validation (only landmarks68)


def landmarks68_source(masks_dir: Path) -> FaceSource:
    return FaceSource("landmarks68", require_data("landmarks68"), BUILD_DIR / "landmarks68_fits.npz", masks_dir,
                      "landmarks68 train (300-W AFW + HELEN; research use only), every 10th face held out", True)


def lfw_unlabeled_source() -> FaceSource:
    return FaceSource("lfw_unlabeled", require_data("lfw_unlabeled"), BUILD_DIR / "teachers" / "lfw_unlabeled_fits.npz",
                      BUILD_DIR / "teachers" / "lfw_unlabeled_cnn_masks",
                      "lfw_unlabeled (LFW; research use) with dlib-teacher landmarks (dlib's model learnt from "
                      "iBUG 300-W: research use only)")


def parse_source(spec: str) -> FaceSource:
    """`lfw_unlabeled`, or `name:images:fits.npz:masks` for any other labelled folder."""
    if spec == "lfw_unlabeled":
        return lfw_unlabeled_source()
    parts = spec.split(":")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"source {spec!r}: give lfw_unlabeled or name:images:fits.npz:masks")
    name, images, fits, masks = parts
    return FaceSource(name, Path(images), Path(fits), Path(masks), f"{name} (see its terms)")


@dataclass
class Face:
    gray: np.ndarray
    mask: np.ndarray
    truth: ShapeState       # the fitted R, t, x (D is set per sample by target_for)
    focal: float
    points: np.ndarray      # annotated landmarks
    center: np.ndarray      # principal point of the image, pixels


def mean_shape_unit(lm: LandmarkModel) -> np.ndarray:
    """Frontal projection of the mean landmarks, scaled into the unit square."""
    p = project(lm.neutral @ head_rotation(0, 0, 0).T + [0, 0, 60.0], 1000.0, np.zeros(2))
    p = p - p.min(0)
    return p / p.max()


def box_start(lm: LandmarkModel, face: Face, focal: float, rng: np.random.Generator, jitter=0.05) -> ShapeState:
    """The mean face placed in a (jittered) box of the annotated points, as a detector would."""
    lo, hi = face.points.min(0), face.points.max(0)
    size = (hi - lo).max() * (1 + rng.normal(0, jitter))
    centre = (lo + hi) / 2 + rng.normal(0, jitter, 2) * size
    return mean_face_in_box(lm, (centre[0] - size / 2, centre[1] - size / 2, size, size), focal, face.center)


def perturbed_start(truth: ShapeState, other: ShapeState, focal: float, scale: float, rng) -> ShapeState:
    """The ground truth moved as a previous frame would be: rotation, translation, expression, D."""
    dq = np.zeros(Q_DIM)
    dq[:3] = rng.normal(0, np.radians(6.0), 3)
    dq[3:5] = rng.normal(0, 0.08, 2)
    dq[5] = rng.normal(0, 0.05)
    start = apply_update(truth, dq, focal, scale)
    mix = rng.uniform(0, 1)
    start.expression = np.clip((1 - mix) * truth.expression + mix * other.expression, 0, 1)
    start.displacements = (1 - mix) * truth.displacements + mix * other.displacements
    return start


def occlude(mask: np.ndarray, points: np.ndarray, rng) -> np.ndarray:
    """A copy of mask with a rectangle, centred near the face, covering up to 80% of its box."""
    lo, hi = points.min(0), points.max(0)
    size = hi - lo
    centre = (lo + hi) / 2 + rng.normal(0, 0.25, 2) * size
    half = rng.uniform(0.1, 0.8, 2) * size / 2
    out = mask.copy()
    x0, y0 = np.maximum((centre - half).astype(int), 0)
    x1, y1 = (centre + half).astype(int)
    out[y0:max(y1, y0), x0:max(x1, x0)] = 0
    return out


def load_faces(source: FaceSource, use_masks: bool) -> tuple[list[Face], list[str]]:
    """The faces of a source with their fits and (when use_masks) their face masks."""
    if not source.fits.is_file():
        raise FileNotFoundError(f"{source.fits} missing: fit the {source.name} landmarks first "
                                "(training.regressor.fit_landmarks68, or training.teachers.fit_teacher_labels)")
    fits = dict(np.load(source.fits))
    width, height = (int(v) for v in fits["image_size"])
    faces, names = [], []
    for i, name in enumerate(fits["files"]):
        path = source.images / str(name)
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise FileNotFoundError(f"cannot read training image {path}")
        if gray.shape != (height, width):
            raise ValueError(f"{path} is {gray.shape[1]}x{gray.shape[0]}, its fits say {width}x{height}")
        mask_path = source.masks / (Path(str(name)).stem + ".png")
        if use_masks:
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise FileNotFoundError(f"{mask_path} missing: make the face masks of {source.name} with "
                                        "`python -m training.regressor.segment_landmarks68` (see its --help for other sources) "
                                        "or training.regressor.landmarks68_masks (masks rendered from the fits)")
            mask = (mask > 127).astype(np.uint8)
        else:
            mask = np.ones_like(gray)
        truth = ShapeState.from_pose(fits["rotation"][i], fits["translation"][i], fits["expression"][i])
        faces.append(Face(gray, mask, truth, float(fits["focal_px"][i]), fits["landmarks"][i].astype(np.float64),
                          principal_point((width, height))))
        names.append(str(name))
    return faces, names


def load_sources(sources: list[FaceSource], use_masks: bool) -> tuple[list[Face], np.ndarray, np.ndarray, dict]:
    """All faces of the sources, the training and held-out indices into them, and counts per source."""
    faces, train, val, counts = [], [], [], {}
    for source in sources:
        found, names = load_faces(source, use_masks)
        held = held_out(names) if source.validation else np.zeros(len(names), bool)
        train.extend(len(faces) + np.flatnonzero(~held))
        val.extend(len(faces) + np.flatnonzero(held))
        counts[source.name] = {"train": int((~held).sum()), "held_out": int(held.sum())}
        faces.extend(found)
    return faces, np.array(train, np.int64), np.array(val, np.int64), counts


nme = point_error


def evaluate(cascade: FernCascade, faces: list[Face], idx: np.ndarray, lm: LandmarkModel, passes: int, rng) -> dict:
    """NME on held-out faces from the landmark box, with what the tracker assumes at the start:
    the mean identity and a 50 mm-equivalent focal length."""
    errors, start_errors, times = [], [], []
    for i in idx:
        f = faces[i]
        focal = focal_from_mm(50.0, f.gray.shape[1])
        state = box_start(lm, f, focal, rng, jitter=0.0)
        start_errors.append(nme(landmarks(state, lm, focal, f.center), f.points))
        t0 = time.perf_counter()
        for _ in range(passes):
            state = cascade.run(f.gray, f.mask, state, lm, focal, f.center)
        times.append((time.perf_counter() - t0) * 1000 / passes)
        errors.append(nme(landmarks(state, lm, focal, f.center), f.points))
    return {"nme_mean": float(np.mean(errors)), "nme_median": float(np.median(errors)),
            "start_nme_mean": float(np.mean(start_errors)), "ms_per_pass_median": float(np.median(times))}


@dataclass
class Sample:
    """One training start: the face it is on, its mask, and the identity and focal it assumes."""

    face: int
    mask: np.ndarray
    lm: LandmarkModel
    focal: float
    target: ShapeState
    state: ShapeState


def target_for(face: Face, lm: LandmarkModel, focal: float) -> ShapeState:
    """The fitted R, t, x with D re-expressed for an assumed identity and focal length (DDE: D
    absorbs what the assumed 3D model does not explain)."""
    target = face.truth.copy()
    ratio = face.focal / focal  # keep the face where it was in the image, and its size
    target.abc = np.array([target.abc[0] * ratio, target.abc[1] * ratio, target.abc[2] - np.log(ratio)])
    target.displacements = np.zeros((NUM_LANDMARKS, 2))
    target.displacements = face.points - landmarks(target, lm, focal, face.center)
    return target


def make_samples(faces, train_idx, model, args, rng) -> list[Sample]:
    """Starts from a detector-like box and from a perturbed ground truth (a previous frame), each
    with a perturbed identity and focal length as in the paper, plus occluded copies."""
    samples = []
    basis = model.subset(model.landmark_vertex_ids)
    for i in train_idx:
        f = faces[i]
        scale = face_scale(f.points)
        for s in range(args.starts):
            identity = rng.normal(0.0, args.identity_sd, model.num_identity)
            lm = LandmarkModel(basis.neutral + basis.identity_basis @ identity, basis.expression_basis)
            # a few fits ended on a very short focal length; starts assume a plausible camera
            focal = max(f.focal * float(np.exp(rng.normal(0.0, args.focal_log_sd))), MIN_FOCAL_PX)
            target = target_for(f, lm, focal)
            other = faces[train_idx[rng.integers(len(train_idx))]].truth
            if s % 2:
                start = box_start(lm, f, focal, rng, jitter=args.box_jitter)
            else:
                start = perturbed_start(target, other, focal, scale, rng)
            samples.append(Sample(i, f.mask, lm, focal, target, start))
            # occluded copies mask a rectangle out: without masks that would mean nothing at run time
            if not (args.no_occlusion or args.no_masks):
                samples.append(Sample(i, occlude(f.mask, f.points, rng), lm, focal, target, start.copy()))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stages", type=int, default=10)
    parser.add_argument("--ferns", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--features", type=int, default=400)
    parser.add_argument("--starts", type=int, default=8, help="initial shapes per training face")
    parser.add_argument("--beta", type=float, default=250.0)
    parser.add_argument("--identity-sd", type=float, default=0.5, help="sd of the assumed identity (in sd units)")
    parser.add_argument("--focal-log-sd", type=float, default=0.25, help="sd of log(assumed / fitted focal)")
    parser.add_argument("--box-jitter", type=float, default=0.08,
                        help="sd of start box centre and size, in box sizes (Viola-Jones varies about this much)")
    parser.add_argument("--no-masks", action="store_true",
                        help="train on whole images, without occluded copies (ablation: plain DDE)")
    parser.add_argument("--masks-dir", type=Path, default=BUILD_DIR / "landmarks68_cnn_masks",
                        help="face masks of the landmarks68 images: made by the segmenter, as at run time "
                             "(training.regressor.segment_landmarks68, the default) or rendered from the fits "
                             "(training.regressor.landmarks68_masks)")
    parser.add_argument("--source", dest="sources", action="append", type=parse_source, default=[],
                        help="more training faces besides landmarks68: lfw_unlabeled (dlib teacher labels, "
                             "training/teachers/README.md) or name:images:fits.npz:masks; repeatable")
    parser.add_argument("--no-occlusion", action="store_true", help="no occlusion-augmented copies (ablation)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "regressor.npz")
    parser.add_argument("--log", type=Path, default=REPO_ROOT / "training" / "logs" / "regressor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    model = load_face_model()
    lm = LandmarkModel.from_face_model(model)
    sources = [landmarks68_source(args.masks_dir)] + args.sources
    faces, train_idx, val_idx, counts = load_sources(sources, not args.no_masks)
    samples = make_samples(faces, train_idx, model, args, rng)
    print(f"{len(train_idx)} training faces {counts}, {len(val_idx)} held out, {len(samples)} samples",
          file=sys.stderr, flush=True)

    shape_unit = mean_shape_unit(lm)
    triangles = Delaunay(shape_unit).simplices
    stages, log = [], []
    for t in range(args.stages):
        t0 = time.perf_counter()
        layout = make_layout(shape_unit, triangles, args.features, rng)
        values = np.zeros((len(samples), args.features), np.float32)
        residual = np.zeros((len(samples), Q_DIM))
        scales = np.zeros(len(samples))
        for n, smp in enumerate(samples):
            pts = landmarks(smp.state, smp.lm, smp.focal, faces[smp.face].center)
            scales[n] = face_scale(pts)
            values[n] = sample_features(faces[smp.face].gray, smp.mask, layout.points(pts))
            residual[n] = difference(smp.target, smp.state, smp.focal, scales[n])
        dim_scale = residual.std(0) + 1e-6
        pairs, thr, outputs, prediction = train_ferns(values, residual, args.ferns, args.depth, rng, args.beta, dim_scale)
        for n, smp in enumerate(samples):
            smp.state = apply_update(smp.state, prediction[n], smp.focal, scales[n])
        stages.append(Stage(layout, pairs, thr, outputs))
        train_err = float(np.mean([nme(landmarks(smp.state, smp.lm, smp.focal, faces[smp.face].center),
                                       faces[smp.face].points) for smp in samples[::7]]))
        val = evaluate(FernCascade(stages), faces, val_idx, lm, passes=1, rng=rng)
        entry = {"stage": t + 1, "train_nme": train_err, "val_nme": val["nme_mean"], "seconds": time.perf_counter() - t0}
        log.append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)

    meta = {"stages": args.stages, "ferns": args.ferns, "depth": args.depth, "features": args.features,
            "masks": {s.name: s.masks.name for s in sources} if not args.no_masks else None,
            "occlusion_augmentation": not (args.no_occlusion or args.no_masks),
            "identity_sd": args.identity_sd, "focal_log_sd": args.focal_log_sd, "box_jitter": args.box_jitter,
            "trained_on": "; ".join(s.terms for s in sources), "faces": counts,
            "q_layout": "omega(3), a*f/s, b*f/s, c, x(46), D/s (136); s = landmark RMS spread in pixels"}
    cascade = FernCascade(stages, meta)
    final = {p: evaluate(cascade, faces, val_idx, lm, passes=p, rng=rng) for p in (1, 2)}
    cascade.meta["validation"] = final
    cascade.save(args.out)
    # the file keeps the fern outputs in float16: what that costs, on the same held-out faces
    final["1_as_saved_float16"] = evaluate(FernCascade.load(args.out), faces, val_idx, lm, passes=1, rng=rng)
    args.log.mkdir(parents=True, exist_ok=True)
    arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    arguments["sources"] = [s.name for s in sources]
    write_text(args.log / "log.json", json.dumps({"command": " ".join(["python -m training.regressor.train"] + sys.argv[1:]),
                                                   "args": arguments, "faces": counts, "samples": len(samples),
                                                   "stages": log, "validation": final}, indent=1))
    _plot(log, args.log / "curve.png")
    print(json.dumps(final, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


def _plot(log: list[dict], path: Path) -> None:
    """A small training curve drawn with OpenCV (no plotting library needed)."""
    w, h, pad = 480, 300, 40
    img = np.full((h, w, 3), 255, np.uint8)
    ys = [e["train_nme"] for e in log] + [e["val_nme"] for e in log]
    top = max(ys) * 1.05
    def xy(k, v):
        return int(pad + (w - 2 * pad) * k / max(len(log) - 1, 1)), int(h - pad - (h - 2 * pad) * v / top)
    for key, colour in (("train_nme", (200, 80, 0)), ("val_nme", (0, 0, 220))):
        pts = [xy(k, e[key]) for k, e in enumerate(log)]
        for a, b in zip(pts[:-1], pts[1:]):
            cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
        cv2.putText(img, key, (pts[-1][0] - 60, pts[-1][1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    cv2.putText(img, f"NME by stage (max {top:.3f})", (pad, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)


if __name__ == "__main__":
    main()
