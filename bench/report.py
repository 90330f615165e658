"""reports/benchmarks.md from the JSON in bench/results/: tables, plots (reports/*.png), machine.

Run: .venv/bin/python -m bench.report     (bench.run_all runs the benchmarks first, then this)
Reads peers.json, occlusion_peers.json, segmentation_peers.json, mediapipe_to_ibug68.json and
soak.json; a missing file becomes a line saying which command makes it. Plots are drawn with
OpenCV, so that the report needs nothing beyond the run-time packages.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from core.io.files import write_image, write_text

from .common import RESULTS_DIR

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "reports"
COLOURS = {"maskcap": (40, 110, 230), "mediapipe": (60, 160, 60)}  # BGR


def load(name: str) -> dict | None:
    path = RESULTS_DIR / name
    return json.loads(path.read_text()) if path.exists() else None


def pct(v, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f} %"


def ms(v) -> str:
    return "-" if v is None else f"{v:.1f}"


# ----------------------------------------------------------------------------- plots

def line_plot(series: dict[str, tuple[list[float], list[float | None], tuple]], title: str, x_label: str,
              y_label: str, y_max: float, size=(640, 420)) -> np.ndarray:
    """A small line chart: series name -> (xs, ys (None = no value), BGR colour, dashed)."""
    w, h = size
    left, right, top, bottom = 70, 20, 40, 60
    img = np.full((h, w, 3), 255, np.uint8)
    xs_all = [x for xs, _, _ in series.values() for x in xs]
    x0, x1 = min(xs_all), max(xs_all)

    def px(x, y):
        return (int(left + (x - x0) / (x1 - x0) * (w - left - right)),
                int(h - bottom - min(y, y_max) / y_max * (h - top - bottom)))

    for k in range(6):  # grid and y ticks
        y = y_max * k / 5
        p = px(x0, y)
        cv2.line(img, (left, p[1]), (w - right, p[1]), (225, 225, 225), 1)
        cv2.putText(img, f"{100 * y:.0f}%", (8, p[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    for x in sorted(set(xs_all)):
        p = px(x, 0)
        cv2.putText(img, f"{100 * x:.0f}%", (p[0] - 12, h - bottom + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (80, 80, 80), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (120, 120, 120), 1)
    cv2.putText(img, title, (left, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, x_label, (left + 120, h - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, y_label, (left + 6, top + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (name, (xs, ys, style)) in enumerate(series.items()):
        colour, dashed = style
        points = [px(x, y) for x, y in zip(xs, ys) if y is not None]
        for a, b in zip(points, points[1:]):
            if dashed:
                for t in np.linspace(0, 1, 9)[::2]:
                    s = np.array(a) + (np.array(b) - np.array(a)) * t
                    e = np.array(a) + (np.array(b) - np.array(a)) * min(t + 1 / 8, 1)
                    cv2.line(img, tuple(int(v) for v in s), tuple(int(v) for v in e), colour, 2, cv2.LINE_AA)
            else:
                cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(img, p, 4, colour, -1, cv2.LINE_AA)
        ly = top + 18 + 18 * k
        cv2.line(img, (w - right - 190, ly), (w - right - 165, ly), colour, 2)
        cv2.putText(img, name, (w - right - 160, ly + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def occlusion_plot(occ: dict) -> np.ndarray:
    panels = []
    sizes = occ["sizes"]
    for kind, label in (("box", "grey box"), ("hand", "recoloured hand")):
        rows = occ["by_kind"][kind]
        series = {}
        for tool in ("maskcap", "mediapipe"):
            series[f"{tool} landmarks"] = (sizes, [rows[f"{s:.1f}"][tool]["landmark_error"] for s in sizes],
                                           (COLOURS[tool], False))
        series["maskcap blendshapes"] = (sizes, [rows[f"{s:.1f}"]["maskcap"]["blendshape_error"] for s in sizes],
                                         (COLOURS["maskcap"], True))
        panels.append(line_plot(series, f"{occ['clip']}: error against a {label}", "occluder size (share of face box)",
                                "landmarks: / eye distance; blendshapes: mean abs. weight", 0.3))
    return np.hstack(panels)


def segmentation_plot(seg: dict) -> np.ndarray:
    """Grouped bars: mean IoU per occlusion for each mask."""
    names = [("mediapipe_face_oval", "MediaPipe face oval", COLOURS["mediapipe"]),
             ("maskcap_own_box", "maskcap (own detection)", COLOURS["maskcap"]),
             ("maskcap_label_box", "maskcap (label box)", (150, 60, 20))]
    w, h, left, bottom, top = 640, 400, 60, 50, 60
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, f"face IoU, lfw_parts validation ({seg['images']} images)", (left, 24),
                cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(6):
        y = int(h - bottom - k / 5 * (h - top - bottom))
        cv2.line(img, (left, y), (w - 20, y), (225, 225, 225), 1)
        cv2.putText(img, f"{k / 5:.1f}", (20, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    groups = list(seg["by_occlusion"])
    group_w = (w - left - 20) / len(groups)
    for g, occlusion in enumerate(groups):
        for k, (key, label, colour) in enumerate(names):
            v = seg["by_occlusion"][occlusion][key]["mean_iou"]
            x0 = int(left + g * group_w + 20 + k * (group_w - 40) / 3)
            x1 = int(x0 + (group_w - 40) / 3 - 6)
            y = int(h - bottom - v * (h - top - bottom))
            cv2.rectangle(img, (x0, y), (x1, h - bottom), colour, -1)
            cv2.putText(img, f"{v:.2f}", (x0, y - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, occlusion, (int(left + g * group_w + group_w / 2 - 25), h - bottom + 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (_, label, colour) in enumerate(names):
        cv2.rectangle(img, (left + 10 + 190 * k, 36), (left + 24 + 190 * k, 48), colour, -1)
        cv2.putText(img, label, (left + 28 + 190 * k, 47), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


# ----------------------------------------------------------------------------- sections

def machine_section(sources: list[dict]) -> list[str]:
    m = next((s["machine"] for s in sources if s and "machine" in s), None)
    if m is None:
        return ["No results yet: run `.venv/bin/python -m bench.run_all`."]
    return [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, {m['platform']}.",
            "Each ratio compares tools measured in the same run on the same frames, run one after the other and "
            "(for speed) twice, interleaved, keeping each tool's faster run; absolute times depend on what else "
            "the machine runs."]


def speed_section(peers: dict | None) -> list[str]:
    if peers is None:
        return ["Not run: `.venv/bin/python -m bench.peers`."]
    out = [f"Command: `.venv/bin/python -m bench.peers` ({peers['frames_per_clip']} frames per clip, the first "
           "of each clip; every tool in its own venv on the same decoded frames, at the clip's size and letterboxed "
           f"to 1280x720; {peers.get('repeats', 1)} interleaved runs per tool, the faster kept). Peers: " +
           "; ".join(f"{k}: {v}" for k, v in peers["peers"].items()) + ".", "",
           "Milliseconds per frame, median (95th percentile); maskcap's stages are measured one by one on every "
           "frame (detection on every frame, although the tracker only runs it when the face is lost; the "
           "segmentation network includes cutting the crop). The identity/focal solve is per solve of 6 "
           "keyframes, on its own thread, not per frame; the tracker's frame time includes that thread competing "
           "for the two cores, hence the column without it. The pipeline column is wall time per frame of the "
           "threaded Pipeline (its frame rate in brackets).", "",
           "| clip | size | detection | seg. network | graph cut | regression | tracker, one thread | same without "
           "identity thread | pipeline (fps) | identity solve | MediaPipe FaceMesh | dlib detector | dlib 68 points "
           "| dlib total |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in peers["runs"]:
        t = run["tools"]
        m, mp, dl = t["maskcap"]["timings"], t["mediapipe"]["timings"], t["dlib"]["timings"]

        def cell(d):
            return f"{ms(d['median_ms'])} ({ms(d['p95_ms'])})" if d and d.get("median_ms") is not None else "-"
        out.append(f"| {run['clip']} | {run['size'][0]}x{run['size'][1]} | {cell(m['detection'])} | "
                   f"{cell(m['segmentation_network'])} | {cell(m['graph_cut'])} | {cell(m['regression'])} | "
                   f"{cell(m['tracker_frame'])} | {cell(m.get('tracker_frame_no_identity_thread'))} | "
                   f"{m['pipeline']['ms_per_frame']:.1f} ({m['pipeline']['fps']:.1f} fps) | "
                   f"{cell(m['identity_focal_solve_6_keyframes'])} | {cell(mp['total'])} | {cell(dl['detection'])} | "
                   f"{cell(dl['landmarks_68'])} | {cell(dl['total'])} |")
    out += ["", "Ratios in the same run (median ms per frame of the peer / maskcap; above 1: maskcap is faster), "
            "peak resident memory of each tool's process (VmHWM, less the size of the memory-mapped frames that "
            "every tool reads), and faces found:", "",
            "| clip | size | MediaPipe / maskcap tracker | MediaPipe / maskcap tracker without identity thread | "
            "MediaPipe / maskcap pipeline | dlib / maskcap tracker | "
            "peak MB maskcap / MediaPipe / dlib (without the frames) | faces found maskcap / MediaPipe / dlib |",
            "|---|---|---|---|---|---|---|---|"]
    for run in peers["runs"]:
        t, r = run["tools"], run["ratios"]
        bare = t["maskcap"]["timings"].get("tracker_frame_no_identity_thread", {}).get("median_ms")
        no_identity = "-" if not bare else f"{t['mediapipe']['timings']['total']['median_ms'] / bare:.2f}"
        peaks = " / ".join(f"{t[k]['peak_rss_mb'] - t[k].get('frames_mb', 0):.0f}"
                           for k in ("maskcap", "mediapipe", "dlib"))
        out.append(f"| {run['clip']} | {run['size'][0]}x{run['size'][1]} | "
                   f"{r['mediapipe']['ms_per_frame_over_maskcap_tracker']:.2f} | "
                   f"{no_identity} | "
                   f"{r['mediapipe']['ms_per_frame_over_maskcap_pipeline']:.2f} | "
                   f"{r['dlib']['ms_per_frame_over_maskcap_tracker']:.2f} | "
                   f"{peaks} | "
                   f"{t['maskcap']['faces_found']} / {t['mediapipe']['faces_found']} / {t['dlib']['faces_found']} "
                   f"of {run['frames']} |")
    return out


def occlusion_section(occ: dict | None, mapping: dict | None) -> list[str]:
    if occ is None:
        return ["Not run: `.venv/bin/python -m bench.occlusion_peers`."]
    out = [f"Command: `.venv/bin/python -m bench.occlusion_peers` (`{occ['clip']}`, {occ['frames']} frames; "
           f"references tracked: maskcap {occ['reference_tracked']['maskcap']}, MediaPipe "
           f"{occ['reference_tracked']['mediapipe']}). The paper's Fig. 8 protocol: each tool's own unoccluded track "
           "is its reference; every frame then gets a grey box or a hand (the largest cut-out of `hands/`, recoloured "
           "to the face's tone) whose size is the given share of the face box, centred on the face with a little "
           f"seeded jitter; {occ['occluder_placed_on']}. Landmark error: mean distance over the 68 iBUG points to "
           "the tool's reference, divided by the reference's outer-eye-corner distance, over the frames both have; "
           "lost: reference frames without a face.", "", "![occlusion](occlusion_peers.png)", ""]
    for kind in ("box", "hand"):
        rows = occ["by_kind"][kind]
        sizes = occ["sizes"]
        out += [f"**{'Grey box' if kind == 'box' else 'Recoloured hand'}** (example at 40 %: "
                f"`reports/occlusion_{kind}_40.png`)", "",
                "| size (share of face box) | " + " | ".join(f"{100 * s:.0f} %" for s in sizes) + " |",
                "|---|" + "---|" * len(sizes)]
        for tool, label in (("maskcap", "maskcap"), ("mediapipe", "MediaPipe")):
            out.append(f"| {label} landmark error | " + " | ".join(
                pct(rows[f"{s:.1f}"][tool]["landmark_error"]) for s in sizes) + " |")
            out.append(f"| {label} frames lost of {rows[f'{sizes[0]:.1f}'][tool]['reference_frames']} | " + " | ".join(
                str(rows[f"{s:.1f}"][tool]["lost_frames"]) for s in sizes) + " |")
        out.append("| maskcap blendshape error (mean abs.) | " + " | ".join(
            "-" if rows[f"{s:.1f}"]["maskcap"]["blendshape_error"] is None
            else f"{rows[f'{s:.1f}']['maskcap']['blendshape_error']:.3f}" for s in sizes) + " |")
        out.append("")
    out.append(f"MediaPipe blendshapes: {occ['mediapipe_blendshapes']}.")
    if mapping:
        out += ["", f"MediaPipe's 468 mesh points become the 68 iBUG points through a map built by nearest neighbour "
                f"(`.venv/bin/python -m bench.mediapipe_ibug68`, kept in `bench/results/mediapipe_to_ibug68.json`): "
                f"for each iBUG point the mesh point closest on average to the human annotation of "
                f"{mapping['photos_used_to_build']} landmarks68 photos. On the {mapping['photos_held_out']} held-out "
                f"photos (every 10th name) the mapped MediaPipe points score NME "
                f"{pct(mapping['held_out_nme_mean'], 2)} "
                f"(median {pct(mapping['held_out_nme_median'], 2)}; inner 51 points "
                f"{pct(mapping['held_out_nme_inner_51_mean'], 2)}): the jaw, a sliding silhouette, fits a fixed "
                "mesh point least well. Since each tool is compared with its own reference, the map's own error "
                "largely cancels in the occlusion figures."]
    return out


def segmentation_section(seg: dict | None) -> list[str]:
    if seg is None:
        return ["Not run: `.venv/bin/python -m bench.segmentation_peers`."]
    out = [f"Command: `.venv/bin/python -m bench.segmentation_peers` ({seg['data']}, {seg['images']} images; "
           "occlusions and seeds of `evaluation.segmentation`). The mask a user would otherwise make: MediaPipe "
           "FaceMesh's `FACEMESH_FACE_OVAL` polygon, filled. No face found gives an empty mask (IoU 0). The oval "
           "leaves out the ears, which `lfw_parts` counts as face; it also covers whatever lies over the face.", "",
           "![segmentation](segmentation_peers.png)", "",
           "| occlusion | MediaPipe face oval | maskcap, own detection | maskcap, label box | faces found: MediaPipe / "
           "maskcap's Viola-Jones |", "|---|---|---|---|---|"]
    for occlusion, r in seg["by_occlusion"].items():
        out.append(f"| {occlusion} | {r['mediapipe_face_oval']['mean_iou']:.3f} | "
                   f"{r['maskcap_own_box']['mean_iou']:.3f} | {r['maskcap_label_box']['mean_iou']:.3f} | "
                   f"{pct(r['mediapipe_face_oval']['face_found_share'], 0)} / "
                   f"{pct(r['maskcap_own_box']['face_found_share'], 0)} |")
    out += ["", "Side by side (rows: clean, hand, rectangle; columns: image, label, MediaPipe oval, maskcap with its "
            "own detection): `reports/segmentation_peers_example.jpg`.", "",
            "![segmentation examples](segmentation_peers_example.jpg)"]
    return out


def soak_section(soak: dict | None) -> list[str]:
    if soak is None:
        return ["Not run: `.venv/bin/python -m bench.soak --minutes 10`."]
    g = soak["rss_growth_after_first_minute"]
    fps = ", ".join(f"{m['fps']:.1f}" for m in soak["per_minute"])
    return [f"Command: `.venv/bin/python -m bench.soak --minutes {soak['minutes_requested']:g}` (its own command, not "
            f"part of the tests). `{soak['clip']}` replayed in a loop at its own {soak['clip_fps']:g} fps "
            f"({'paced like a camera' if soak['paced_to_clip_fps'] else 'unpaced'}) through the full live Pipeline "
            f"for {soak['seconds_run'] / 60:.1f} minutes ({soak['loops_of_the_clip']} loops, {soak['frames']} frames "
            f"tracked; the face held in {pct(soak['tracked_share'], 0)} of them).", "",
            "| what | result | target |", "|---|---|---|",
            f"| frames tracked per second, each minute | {fps} | steady (frames the tracker cannot keep up with "
            "are dropped, as from a camera) |",
            f"| resident memory growth after the first minute | {pct(g, 2)} "
            f"({soak['rss_mb']['after_first_minute']:.1f} "
            f"-> {soak['rss_mb']['end_of_run']:.1f} MB) | under 5 % |",
            f"| threads at start / end | {soak['threads']['start']} / {soak['threads']['end']} | no leak |",
            f"| open file descriptors at start / end | {soak['fds']['start']} / {soak['fds']['end']} | no leak |"]


def main() -> None:
    peers, occ, seg = load("peers.json"), load("occlusion_peers.json"), load("segmentation_peers.json")
    mapping, soak = load("mediapipe_to_ibug68.json"), load("soak.json")
    if occ:
        write_image(REPORTS / "occlusion_peers.png", occlusion_plot(occ))
    if seg:
        write_image(REPORTS / "segmentation_peers.png", segmentation_plot(seg))
    lines = ["# Benchmarks and robustness", "",
             "Made by `.venv/bin/python -m bench.run_all` (the benchmarks, then `bench.report`, which writes this "
             "page from `bench/results/*.json`); the soak is `.venv/bin/python -m bench.soak`, and the robustness "
             "tests are `tests/test_robustness.py` in the normal test run. MediaPipe and dlib run in their own venvs "
             "(`training/teachers/setup_envs.sh`, made by the bench when missing); they are never run-time "
             "dependencies of maskcap.", "", *machine_section([peers, occ, seg, soak]), "",
             "## Speed against MediaPipe FaceMesh and dlib", "", *speed_section(peers), "",
             "## Occlusion robustness (paper Fig. 8), maskcap and MediaPipe", "", *occlusion_section(occ, mapping), "",
             "## Segmentation against MediaPipe's face oval", "", *segmentation_section(seg), "",
             "## Soak: a long live session", "", *soak_section(soak), "",
             "## Robustness tests", "",
             "`tests/test_robustness.py` (part of `bash scripts/test.sh`) makes its own media and checks that a "
             "nonexistent path, a text file named .mp4, a zero-frame, truncated or corrupted video, an image "
             "sequence with a gap, a camera that does not open, a camera that stops delivering, a source object "
             "that fails mid-run, and missing, truncated or garbage model files (segmenter, regressor, face model) "
             "each give an error naming the problem, leave no thread running and no output file; that 1x1, 4K, "
             "gray, BGRA frames and a change of frame size work; and that a face which is absent, leaves and "
             "re-enters the frame, is tiny, or is covered by a box for a second gives ok=False frames and is "
             "found again. A face covered by a large recoloured hand for a second is lost within three frames and "
             "found again after the hand leaves.", ""]
    write_text(REPORTS / "benchmarks.md", "\n".join(lines))
    print(f"wrote {REPORTS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
