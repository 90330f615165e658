"""maskcap's command line: track a video file, an image folder or a camera into a take; or mask
(and anonymise) every face in folders of images and videos.

    python -m core.cli track clip.mp4 --json take.json --csv take.csv --preview preview.mp4
    python -m core.cli track 0 --frames 300 --json take.json      # camera 0, 300 frames
    python -m core.cli masks photos/ clip.mp4 --out masks/ --anonymize blur --workers 2
    python -m core.cli masks /archive/in --out /archive/masks --ray auto   # on a Ray cluster

The JSON keeps everything per frame (FACS weights, pose, focal, landmarks, confidence); the CSV
has one row per frame with ARKit blendshape columns and the head pose, for other tools. Exit
status: 0 on success, 2 for bad arguments or a source that cannot be opened. `masks` (see
core/masks/batch.py; with --ray, core/masks/cluster.py) exits 1 when any file failed (each is named in
the summary), 130 when interrupted.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .face.camera import head_angles
from .face.facs import ARKIT_NAMES, FACS_NAMES
from .io.files import write_image, write_text
from .capture.take import track_clip
from .track.pipeline import Pipeline
from .capture.preview import SHEET_TILES, contact_sheet, draw_preview
from .io.sources import SourceError, open_source
from .track.tracker import FaceTracker, TrackerOptions, TrackResult


def frame_record(index: int, time_s: float, result: TrackResult) -> dict:
    record = {"index": index, "time_s": round(time_s, 6), "ok": bool(result.ok),
              "confidence": round(float(result.confidence), 4)}
    if result.landmarks is not None:
        record.update({
            "blendshapes": [round(float(v), 5) for v in result.blendshapes],
            "rotation": np.round(result.rotation, 6).tolist(),
            "translation_cm": np.round(result.translation, 4).tolist(),
            "focal_px": round(float(result.focal), 3),
            "landmarks": np.round(result.landmarks, 2).tolist(),
        })
    return record


def take_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["frame", "time_s", "ok", "confidence", *ARKIT_NAMES, "head_yaw_deg", "head_pitch_deg",
                     "head_roll_deg", "head_x_cm", "head_y_cm", "head_z_cm"])
    for r in records:
        if "blendshapes" in r and r["ok"]:
            yaw, pitch, roll = np.degrees(head_angles(np.array(r["rotation"])))
            writer.writerow([r["index"], r["time_s"], 1, r["confidence"], *r["blendshapes"],
                             round(yaw, 3), round(pitch, 3), round(roll, 3), *r["translation_cm"]])
        else:
            writer.writerow([r["index"], r["time_s"], 0, r["confidence"], *([""] * (len(ARKIT_NAMES) + 6))])
    return out.getvalue()


def _segmenter_options(args):
    from .segment.segmentation import SegmenterOptions
    return SegmenterOptions(device=args.device, intra_op_threads=args.threads)


def _add_device_arguments(parser) -> None:
    from .segment.segmentation import DEVICES
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="where the segmenter runs: cpu (default), auto (CUDA when it starts, else the CPU) "
                             "or cuda (an error when it cannot start)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the segmenter (default 1)")


def track_command(args) -> int:
    try:
        source = open_source(args.source, fps=args.fps)
    except (SourceError, FileNotFoundError) as exc:
        print(f"maskcap: {exc}", file=sys.stderr)
        return 2
    live = source.frame_count is None
    limit = args.frames or source.frame_count
    try:
        # a file is tracked as the add-on bakes it: identity and focal solved inline, repeatable
        tracker = FaceTracker(TrackerOptions(focal_mm=args.focal_mm, synchronous_adaptation=not live,
                                             segmenter=_segmenter_options(args)))
    except (OSError, RuntimeError) as exc:  # a missing or corrupt model file or device, named in the message
        source.close()
        print(f"maskcap: {exc}", file=sys.stderr)
        return 2
    writer = preview_tmp = None
    records: list[dict] = []
    sheet: list[np.ndarray] = []
    sheet_every = max(1, (limit or 240) // SHEET_TILES)
    t0 = shown = time.perf_counter()
    finished = False  # an unexpected error leaves no half-made preview behind

    def on_frame(frame, result) -> None:
        nonlocal writer, preview_tmp, shown
        records.append(frame_record(frame.index, frame.time_s, result))
        if args.preview:
            if writer is None:
                preview_tmp = args.preview.with_name("." + args.preview.name + ".tmp" + args.preview.suffix)
                writer = cv2.VideoWriter(str(preview_tmp), cv2.VideoWriter_fourcc(*"mp4v"), source.fps,
                                         (frame.image.shape[1], frame.image.shape[0]))
            writer.write(draw_preview(frame.image, result))
        if args.contact_sheet and frame.index % sheet_every == 0 and len(sheet) < SHEET_TILES:
            sheet.append(draw_preview(frame.image, result))
        if not args.quiet and (time.perf_counter() - shown > 0.5 or len(records) == limit):
            shown = time.perf_counter()
            total = f"/{limit}" if limit else ""
            rate = len(records) / max(time.perf_counter() - t0, 1e-6)
            print(f"\rtracked {len(records)}{total} frames, {rate:.1f} fps", end="", file=sys.stderr)

    try:
        if live:  # a camera: the newest frame each time, until --frames
            with source, tracker, Pipeline(tracker, source, live=True) as pipe:
                for frame, result in pipe.results():
                    on_frame(frame, result)
                    if args.frames and len(records) >= args.frames:
                        break
        else:  # a file: the bake's path, every frame in order, the same take every run
            track_clip(source, tracker=tracker, max_frames=args.frames, on_frame=on_frame)
        finished = True
    except KeyboardInterrupt:
        finished = True
        print("\ninterrupted: writing what was tracked", file=sys.stderr)
    except SourceError as exc:
        finished = True
        print(f"\nmaskcap: {exc}; writing the {len(records)} frames tracked before it", file=sys.stderr)
    finally:
        if writer is not None:
            writer.release()
            if preview_tmp is not None and preview_tmp.exists():
                if finished:
                    preview_tmp.replace(args.preview)
                else:
                    preview_tmp.unlink()
    if not args.quiet:
        print(file=sys.stderr)
    take = {"source": str(args.source), "fps": source.fps, "size": list(source.size),
            "facs_names": list(FACS_NAMES), "arkit_names": list(ARKIT_NAMES), "frames": records}
    if args.json:
        write_text(args.json, json.dumps(take))
    if args.csv:
        write_text(args.csv, take_csv(records))
    if args.contact_sheet and sheet:
        write_image(args.contact_sheet, contact_sheet(sheet))
    tracked = sum(r["ok"] for r in records)
    print(f"{len(records)} frames, face found in {tracked}", file=sys.stderr)
    return 0


def masks_command(args) -> int:
    from .masks.batch import DEFAULT_MIN_SCORE, BatchOptions, print_summary, report_json, run_batch
    if args.workers is not None and args.workers < 1:
        print("maskcap: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.detect_every < 1:
        print("maskcap: --detect-every must be 1 or more", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("maskcap: --threads must be 1 or more", file=sys.stderr)
        return 2
    options = BatchOptions(out_dir=args.out, anonymize=args.anonymize, workers=args.workers or 2,
                           min_score=DEFAULT_MIN_SCORE if args.min_score is None else args.min_score,
                           feather_px=args.feather_px, fast_detection=args.fast, detect_every=args.detect_every,
                           quiet=args.quiet, device=args.device, segmenter_threads=args.threads)
    if args.ray:
        from .masks.cluster import ClusterError, ClusterOptions, run_on_cluster
        try:
            cluster = ClusterOptions(address=args.ray, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                                     gpus_per_worker=args.gpus_per_worker, range_frames=args.range_frames,
                                     images_per_task=args.images_per_task)
            report = run_on_cluster(args.inputs, options, cluster)
        except (ClusterError, ValueError) as exc:
            print(f"maskcap: {exc}", file=sys.stderr)
            return 2
    else:
        try:  # the device and model are checked here, before any worker starts
            from .segment.segmentation import FaceSegmenter
            FaceSegmenter(options=_segmenter_options(args)).close()
        except (OSError, RuntimeError) as exc:
            print(f"maskcap: {exc}", file=sys.stderr)
            return 2
        report = run_batch(args.inputs, options)
    print_summary(report, args.out)
    write_text(args.out / "last_run.json", report_json(report))
    return report.exit_code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    track = sub.add_parser("track", help="track a video file, an image folder or a camera index")
    track.add_argument("source", help="video file, folder of images, or camera index (0, 1, ...)")
    track.add_argument("--json", type=Path, help="write the take as JSON")
    track.add_argument("--csv", type=Path, help="write the take as CSV with ARKit column names")
    track.add_argument("--preview", type=Path, help="write a preview video (mask tinted, landmarks drawn)")
    track.add_argument("--contact-sheet", type=Path, help="write a picture of 8 preview frames across the take")
    track.add_argument("--frames", type=int, default=0, help="stop after this many frames (needed for a camera)")
    track.add_argument("--fps", type=float, default=30.0, help="frame rate of an image folder")
    track.add_argument("--focal-mm", type=float, default=50.0, help="35 mm-equivalent focal length to start from")
    _add_device_arguments(track)
    track.add_argument("--quiet", action="store_true")
    masks = sub.add_parser("masks", help="face masks (and an anonymised copy) of images, folders and videos")
    masks.add_argument("inputs", nargs="+", type=Path, help="image files, video files and folders of them")
    masks.add_argument("--out", type=Path, required=True, help="folder for the masks (created; a rerun resumes)")
    masks.add_argument("--anonymize", choices=("blur", "pixelate", "fill"), help="also write an anonymised copy")
    masks.add_argument("--workers", type=int, default=None,
                       help="worker processes (default 2: both cores); with --ray, actors (default: the cluster's CPUs)")
    masks.add_argument("--min-score", type=float, default=None, help="drop faces the segmenter scores below this")
    masks.add_argument("--feather-px", type=float, default=6.0, help="soft edge of the anonymisation, in pixels")
    masks.add_argument("--fast", action="store_true", help="quicker face detection that finds fewer faces")
    masks.add_argument("--detect-every", type=int, default=1, metavar="N",
                       help="videos: detect faces every N frames and follow them between (default 1: every frame)")
    _add_device_arguments(masks)
    masks.add_argument("--ray", metavar="auto|local|ADDRESS",
                       help="run on a Ray cluster (needs requirements-ray.txt; docs/cluster.md): auto, the cluster "
                            "this machine is part of; local, a private one on this machine; or its address")
    masks.add_argument("--cpus-per-worker", type=int, default=1, metavar="C",
                       help="with --ray: CPUs per actor (its detector's threads)")
    masks.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                       help="with --ray: GPUs per actor (0.5: two share one)")
    masks.add_argument("--range-frames", type=int, default=60, metavar="N",
                       help="with --ray: frames per video range (whole --detect-every intervals)")
    masks.add_argument("--images-per-task", type=int, default=1, metavar="N",
                       help="with --ray: files an actor takes at once (more for large clusters: fewer tasks)")
    masks.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "masks":
        return masks_command(args)
    if args.command == "track":
        if args.threads < 1:
            parser.error("--threads must be 1 or more")
        if not (args.json or args.csv or args.preview or args.contact_sheet):
            parser.error("say where to write the take: --json, --csv, --preview and/or --contact-sheet")
        return track_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
