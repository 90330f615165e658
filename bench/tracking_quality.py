"""Tracking quality against MediaPipe FaceMesh and dlib in one run: steady, expressive, no lag.

Run: .venv/bin/python -m bench.tracking_quality [--clips webcam_talking ...] [--frames 0]
On each clip of ../shared/data/videos (tests and demos only, never training), MediaPipe FaceMesh
0.10.21 (the refined 478-point model, video mode) and dlib (HOG detector and 68 points on every
frame) run in their own venvs through bench/peer_worker.py; maskcap's tracker runs here twice, as
shipped and on raw regressions (`TrackerOptions(steady=None)`: one regression a frame, its
blendshapes as regressed), both with repeatable identity solves. The measures are those of
evaluation.video_quality, all read against MediaPipe's eyelids, lips and brows:
- jitter of the 68 landmarks (MediaPipe's through bench.mediapipe_ibug68's map) on frames where
  the expression stays still, and on those of them where the head moves; channel jitter there;
- lag of each track's motion behind dlib's per-frame detections, and the inner-point error against
  dlib on the fastest tenth of frames (dlib filters nothing over time, so it cannot trail);
- EyeBlink recall on closed-eye frames and false rate on open-eye frames;
- correlation of JawOpen, MouthSmile and BrowsU with jaw drop, smile geometry and brow height,
  where the clip shows that motion (its 5-95 % range over a threshold);
- frames where antagonistic channels are both over 0.3, and which channels reach 0.5.
Writes bench/results/tracking_quality.json, reports/tracking_quality.md and
reports/tracking_quality.png. The occlusion side (faces found and error under boxes and hands) is
bench.occlusion_peers.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.face.facs import ANTAGONIST_NAMES, FACS_NAMES  # noqa: E402
from core.io.files import write_image, write_text  # noqa: E402
from core.track.tracker import FaceTracker, TrackerOptions  # noqa: E402
from evaluation import video_quality as vq  # noqa: E402

from .common import machine, write_json  # noqa: E402
from .mediapipe_ibug68 import load_mapping  # noqa: E402
from .peers import PEER_VERSIONS, decode, ensure_peer_envs, run_tool  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "reports"
CLIPS = ("webcam_talking", "webcam_hand_occlusion", "fgnet_talking_face", "expressions_grimaces",
         "expressions_glasses")
TOOLS = ("maskcap", "maskcap_raw", "mediapipe", "dlib")
# the clip shows the motion when its geometric measure spans at least this much (5-95 %)
MOTION_RANGE = {"JawOpen": ("jaw_drop", 0.10), "JawOpen_lips": ("mouth_open", 0.10),
                "MouthSmile": ("corner_lift", 0.08), "BrowsU": ("brow_inner", 0.05)}
CHANNELS = {"JawOpen": ("JawOpen",), "JawOpen_lips": ("JawOpen",), "MouthSmile": ("MouthSmile_L", "MouthSmile_R"),
            "BrowsU": ("BrowsU_C", "BrowsU_L", "BrowsU_R")}
ANTAGONISTS = tuple((FACS_NAMES.index(a), FACS_NAMES.index(b)) for a, b in ANTAGONIST_NAMES)


def track_maskcap(frames: np.ndarray, options: TrackerOptions) -> dict:
    n = len(frames)
    points = np.full((n, 68, 2), np.nan)
    blendshapes = np.full((n, len(FACS_NAMES)), np.nan)
    ms = []
    with FaceTracker(options) as tracker:
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            result = tracker.track(frame)
            ms.append((time.perf_counter() - t0) * 1000)
            if result.ok:
                points[i], blendshapes[i] = result.landmarks, result.blendshapes
    return {"points": points, "blendshapes": blendshapes, "ms": float(np.median(ms))}


def clip_measures(tracks: dict, mesh: np.ndarray, mapping: np.ndarray) -> tuple[dict, dict]:
    """All measures of one clip; also the per-frame geometry (for the plot)."""
    g = vq.expression_geometry(mesh)
    eye = g["eye_distance"]
    points = {"maskcap": tracks["maskcap"]["points"], "maskcap_raw": tracks["maskcap_raw"]["points"],
              "mediapipe": mesh[:, mapping, :2].astype(np.float64), "dlib": tracks["dlib"]["points"]}
    found = {t: np.isfinite(p[:, 0, 0]) for t, p in points.items()}
    every = np.logical_and.reduce(list(found.values()))
    static, moving = vq.static_expression_frames(g)
    out = {"frames": len(eye), "found": {t: int(f.sum()) for t, f in found.items()},
           "static_frames": int((static & every).sum()), "static_moving_frames": int((moving & every).sum()),
           "jitter": {}, "channel_jitter": {}, "motion": {}, "blink": {}, "correlation": {}, "antagonists": {},
           "channels_reaching_half": {}, "ms_per_frame": {t: tracks[t].get("ms") for t in TOOLS}}
    for name, frames in (("static", static & every), ("static_moving", moving & every), ("all", every)):
        out["jitter"][name] = {t: vq.jitter(p, eye, frames) for t, p in points.items()}
        out["channel_jitter"][name] = {t: vq.channel_jitter(tracks[t]["blendshapes"], frames)
                                       for t in ("maskcap", "maskcap_raw")}
    centre = {t: p[:, 17:].mean(1) for t, p in points.items()}
    speed = np.r_[0.0, np.linalg.norm(np.diff(centre["dlib"], axis=0), axis=1)] / eye
    fast = every & (speed >= np.nanpercentile(speed[every], 90)) if every.any() else every
    for t in ("maskcap", "maskcap_raw", "mediapipe"):
        errors = vq.inner_error(points[t], points["dlib"])
        out["motion"][t] = {"lag_frames_behind_dlib": vq.lag_frames(centre[t], centre["dlib"], every),
                            "error_vs_dlib_fast": float(np.nanmean(errors[fast])) if fast.any() else None,
                            "error_vs_dlib_other": float(np.nanmean(errors[every & ~fast])) if every.any() else None}
    for t in ("maskcap", "maskcap_raw"):
        b = tracks[t]["blendshapes"]
        ok = found[t] & found["mediapipe"]
        out["blink"][t] = {side: vq.blink_scores(b[:, FACS_NAMES.index(f"EyeBlink_{side}")], g[f"eye_openness_{side}"], ok)
                           for side in ("L", "R")}
        geometry = {"JawOpen": g["jaw_drop"], "JawOpen_lips": g["mouth_open"], "MouthSmile": vq.smile_geometry(g),
                    "BrowsU": vq.brow_geometry(g)}
        out["correlation"][t] = {}
        for key, names in CHANNELS.items():
            channel = b[:, [FACS_NAMES.index(n) for n in names]].mean(1)
            measure, threshold = MOTION_RANGE[key]
            spread = float(np.nanpercentile(g[measure][ok], 95) - np.nanpercentile(g[measure][ok], 5)) if ok.any() else 0.0
            out["correlation"][t][key] = {"r": vq.correlation(channel, geometry[key], ok), "motion_range": spread,
                                          "shows_motion": spread >= threshold,
                                          "channel_p95": float(np.nanpercentile(channel[ok], 95)) if ok.any() else None}
        counts = vq.antagonist_frames(b, ANTAGONISTS, found[t])
        out["antagonists"][t] = {f"{a}+{c}": int(k) for (a, c), k in zip(ANTAGONIST_NAMES, counts)}
        peak = np.nanmax(np.where(found[t][:, None], b, np.nan), axis=0) if found[t].any() else np.zeros(len(FACS_NAMES))
        out["channels_reaching_half"][t] = [n for n, v in zip(FACS_NAMES, peak) if v >= 0.5]
    return out, g


# ----------------------------------------------------------------------------- report

def _pct(v, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f} %"


def _num(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def decode_clip(clip: str, count: int) -> tuple[np.ndarray, float]:
    """A clip of ../shared/data/videos by name, or any video file."""
    if not Path(clip).suffix:
        return decode(clip, count)
    from core.io.sources import open_source

    with open_source(Path(clip)) as source:
        return np.stack([f.image for _, f in zip(range(count), source)]), source.fps


def report_lines(result: dict, name: str = "tracking_quality") -> list[str]:
    clips = result["clips"]
    lines = ["# Tracking quality: maskcap, MediaPipe FaceMesh and dlib in one run", "",
             f"Made by `.venv/bin/python -m bench.tracking_quality` ({result['machine']['cpu']}, "
             f"{result['machine']['cores']} cores). maskcap is measured as shipped and on raw regressions "
             "(`TrackerOptions(steady=None)`, the tracker before temporal coherence). Every measure reads the "
             "frames independently of the tools through MediaPipe's refined 478 points (evaluation.video_quality). "
             "Peers: " + "; ".join(PEER_VERSIONS.values()) + ".", "",
             "## Steadiness: landmark jitter where the expression stays still", "",
             "Mean second difference of the 68 landmarks over the outer-eye-corner distance (MediaPipe's 68 "
             "through its nearest-neighbour map), on frames whose expression measures stay within small limits for "
             "half a second; 'moving' keeps those where the head also moves. Channels: mean frame-to-frame change "
             "of the 46 weights on the same frames.", "",
             "| clip | frames (moving) | maskcap | raw regressions | MediaPipe | dlib | moving: maskcap / raw / MediaPipe / dlib | channel change: maskcap / raw |",
             "|---|---|---|---|---|---|---|---|"]
    for clip, r in clips.items():
        s, m = r["jitter"]["static"], r["jitter"]["static_moving"]
        cj = r["channel_jitter"]["static"]
        lines.append(f"| {clip} | {r['static_frames']} ({r['static_moving_frames']}) | {_pct(s['maskcap'])} | "
                     f"{_pct(s['maskcap_raw'])} | {_pct(s['mediapipe'])} | {_pct(s['dlib'])} | "
                     f"{' / '.join(_pct(m[t]) for t in TOOLS)} | "
                     f"{_num(cj['maskcap']['step'], 3)} / {_num(cj['maskcap_raw']['step'], 3)} |")
    lines += ["", "## Lag and fast motion", "",
              "Frames by which each track's motion trails dlib's per-frame detections (best correlation of the "
              "velocities), and the inner-point error against dlib on the fastest tenth of frames and on the rest.", "",
              "| clip | lag: maskcap / raw / MediaPipe | fast: maskcap / raw / MediaPipe | other: maskcap / raw / MediaPipe |",
              "|---|---|---|---|"]
    for clip, r in clips.items():
        mo = r["motion"]
        tools = ("maskcap", "maskcap_raw", "mediapipe")
        lines.append(f"| {clip} | {' / '.join(_num(mo[t]['lag_frames_behind_dlib']) for t in tools)} | "
                     f"{' / '.join(_pct(mo[t]['error_vs_dlib_fast']) for t in tools)} | "
                     f"{' / '.join(_pct(mo[t]['error_vs_dlib_other']) for t in tools)} |")
    lines += ["", "## Blinks", "",
              "Closed: the eye's openness (eyelid points) under 45 % of the clip's open eye; open: over 75 %. "
              "Recall: EyeBlink >= 0.5 on closed frames; false: EyeBlink > 0.5 on open frames (target: recall >= 90 %, "
              "false <= 2 %).", "",
              "| clip | eye | closed / open frames | maskcap recall | false | raw recall | false |", "|---|---|---|---|---|---|---|"]
    for clip, r in clips.items():
        for side in ("L", "R"):
            a, b = r["blink"]["maskcap"][side], r["blink"]["maskcap_raw"][side]
            lines.append(f"| {clip} | {side} | {a['closed_frames']} / {a['open_frames']} | {_pct(a['recall'], 0)} | "
                         f"{_pct(a['false_rate'], 1)} | {_pct(b['recall'], 0)} | {_pct(b['false_rate'], 1)} |")
    lines += ["", "## Channels against geometry", "",
              "Pearson r of JawOpen with the jaw drop (nose to chin) and with the lips' opening (inner lips), "
              "MouthSmile (mean of L and R) with the corners' "
              "lift and the mouth's width (z-scores summed), BrowsU (mean of C, L, R) with the brows' height above "
              "the eyes. An asterisk: the clip barely shows that motion (target r >= 0.8 where it does).", "",
              "| clip | JawOpen (jaw): maskcap / raw | JawOpen (lips) | MouthSmile | BrowsU |", "|---|---|---|---|---|"]
    for clip, r in clips.items():
        cells = []
        for key in CHANNELS:
            a, b = r["correlation"]["maskcap"][key], r["correlation"]["maskcap_raw"][key]
            star = "" if a["shows_motion"] else " *"
            cells.append(f"{_num(a['r'])} / {_num(b['r'])}{star}")
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    lines += ["", "## Antagonists and range", "",
              "Frames where both channels of an antagonistic pair exceed 0.3 (all pairs of "
              "`core.face.facs.ANTAGONIST_NAMES` summed), and how many of the 46 channels reach 0.5 somewhere.", "",
              "| clip | antagonist frames: maskcap / raw | channels reaching 0.5: maskcap / raw |", "|---|---|---|"]
    for clip, r in clips.items():
        a, b = r["antagonists"]["maskcap"], r["antagonists"]["maskcap_raw"]
        lines.append(f"| {clip} | {sum(a.values())} / {sum(b.values())} | "
                     f"{len(r['channels_reaching_half']['maskcap'])} / {len(r['channels_reaching_half']['maskcap_raw'])} |")
    grimaces = clips.get("expressions_grimaces")
    if grimaces:
        never = [n for n in FACS_NAMES if n not in grimaces["channels_reaching_half"]["maskcap"]]
        lines += ["", f"On `expressions_grimaces`, channels that never reach 0.5 (maskcap): {', '.join(never) or 'none'}."]
    lines += ["", f"![traces]({name}.png)", "",
              "The plot: a landmark's path (the nose tip, relative to its running mean) on static-expression frames "
              "of the first clip, and EyeBlink_L against the left eye's closure (1 - openness relative to open) on "
              "the clip with the most closed-eye frames.", ""]
    return lines


def trace_plot(series: dict[str, tuple[np.ndarray, tuple]], title: str, size=(900, 260)) -> np.ndarray:
    """Time series on one panel: name -> (values, BGR colour); NaN leaves a gap."""
    w, h = size
    left, right, top, bottom = 50, 10, 30, 25
    img = np.full((h, w, 3), 255, np.uint8)
    values = np.concatenate([v for v, _ in series.values()])
    lo, hi = np.nanpercentile(values, 1), np.nanpercentile(values, 99)
    hi = hi if hi > lo else lo + 1.0
    n = max(len(v) for v, _ in series.values())

    def px(i, v):
        return int(left + i / max(n - 1, 1) * (w - left - right)), int(top + (hi - v) / (hi - lo) * (h - top - bottom))

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (160, 160, 160), 1)
    cv2.putText(img, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (name, (v, colour)) in enumerate(series.items()):
        for i in range(1, len(v)):
            if np.isfinite(v[i - 1]) and np.isfinite(v[i]):
                cv2.line(img, px(i - 1, np.clip(v[i - 1], lo, hi)), px(i, np.clip(v[i], lo, hi)), colour, 1, cv2.LINE_AA)
        cv2.putText(img, name, (w - right - 230, top + 16 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return img


COLOURS = {"maskcap": (40, 110, 230), "maskcap_raw": (170, 170, 240), "mediapipe": (60, 160, 60), "dlib": (140, 60, 140),
           "eye closure": (0, 0, 0)}


def plot(traces: dict) -> np.ndarray:
    panels = []
    if "nose" in traces:
        clip, series = traces["nose"]
        panels.append(trace_plot({t: (v, COLOURS[t]) for t, v in series.items()},
                                 f"{clip}: nose tip x minus its 9-frame mean, static-expression frames (pixels)"))
    if "blink" in traces:
        clip, series = traces["blink"]
        panels.append(trace_plot({t: (v, COLOURS[t]) for t, v in series.items()}, f"{clip}: EyeBlink_L and eye closure"))
    return np.vstack(panels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS),
                        help="clips of ../shared/data/videos by name, or video files (e.g. training clips held out)")
    parser.add_argument("--out", default="tracking_quality",
                        help="name of the result (bench/results/NAME.json, reports/NAME.md and .png)")
    parser.add_argument("--frames", type=int, default=0, help="frames per clip (0: all)")
    args = parser.parse_args()
    ensure_peer_envs()
    cv2.setNumThreads(1)
    mapping = load_mapping()
    result = {"machine": machine(), "peers": PEER_VERSIONS, "clips": {}}
    traces = {}
    with tempfile.TemporaryDirectory(prefix="maskcap_quality_") as tmp:
        for clip in args.clips:
            frames, fps = decode_clip(clip, args.frames or 10 ** 6)
            clip = Path(clip).stem
            tracks = {}
            report, arrays = run_tool("mediapipe", "video", frames, Path(tmp), "--irises")
            mesh = arrays["points"].astype(np.float64)
            tracks["mediapipe"] = {"ms": report["timings"]["total"]["median_ms"]}
            report, arrays = run_tool("dlib", "video", frames, Path(tmp))
            tracks["dlib"] = {"points": arrays["points"].astype(np.float64), "ms": report["timings"]["total"]["median_ms"]}
            tracks["maskcap"] = track_maskcap(frames, TrackerOptions(synchronous_adaptation=True))
            tracks["maskcap_raw"] = track_maskcap(frames, TrackerOptions(synchronous_adaptation=True, steady=None))
            measures, g = clip_measures(tracks, mesh, mapping)
            measures["fps"] = fps
            result["clips"][clip] = measures
            j = measures["jitter"]["static"]
            b = measures["blink"]["maskcap"]
            print(f"{clip}: jitter maskcap {_pct(j['maskcap'])} (raw {_pct(j['maskcap_raw'])}), MediaPipe "
                  f"{_pct(j['mediapipe'])}, dlib {_pct(j['dlib'])}; blink recall L/R {_pct(b['L']['recall'], 0)} / "
                  f"{_pct(b['R']['recall'], 0)}; r JawOpen/Smile/BrowsU "
                  + " / ".join(_num(measures['correlation']['maskcap'][k]['r']) for k in CHANNELS), flush=True)
            static, _ = vq.static_expression_frames(g)
            if "nose" not in traces and static.sum() > 30:
                span = slice(0, min(len(frames), 300))
                series = {}
                for t in ("maskcap_raw", "maskcap", "mediapipe"):
                    p = tracks[t]["points"] if t != "mediapipe" else mesh[:, mapping, :2]
                    x = p[span, 30, 0]
                    mean = np.convolve(x, np.ones(9) / 9, mode="same")
                    mean[:4], mean[-4:] = np.nan, np.nan  # the window runs off the ends there
                    series[t] = np.where(static[span], x - mean, np.nan)
                traces["nose"] = (clip, series)
            closed = measures["blink"]["maskcap"]["L"]["closed_frames"]
            if closed > traces.get("blink_closed", 0):
                openness = g["eye_openness_L"]
                closure = 1.0 - openness / np.nanpercentile(openness, 75)
                span = slice(0, min(len(frames), 600))
                traces["blink"] = (clip, {"maskcap": tracks["maskcap"]["blendshapes"][span, 0],
                                          "maskcap_raw": tracks["maskcap_raw"]["blendshapes"][span, 0],
                                          "eye closure": closure[span]})
                traces["blink_closed"] = closed
    path = write_json(f"{args.out}.json", result)
    write_image(REPORTS / f"{args.out}.png", plot(traces))
    write_text(REPORTS / f"{args.out}.md", "\n".join(report_lines(result, args.out)))
    print(f"saved {path}, {REPORTS / (args.out + '.md')}")


if __name__ == "__main__":
    main()
