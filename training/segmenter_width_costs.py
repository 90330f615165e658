"""What a larger segmentation network would cost at run time: the base shape against wider
and deeper ones, each exported to ONNX with random weights and timed in ONNX Runtime on one
thread, interleaved so that every shape sees the same machine (issue 3: the network underfits,
so more hand IoU needs more capacity; this says how much of the 5 ms budget capacity takes).

    .venv-train/bin/python -m training.segmenter_width_costs [--runs 200]

Prints parameters, median ms per 128x128 crop and the ratio to the network shipped until
2026-12-01 (the base shape, switches kept as a tie-broken mask), in float and in int8 (the
shapes with difference switches, quantised as training.segmentation_quantize does what ships,
calibrated on random crops: the time does not depend on the scales); saves
bench/results/segmenter_width_costs.json. Weights do not change the time, only the shape does.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from core.files import write_text
from training.segmentation_net import (CONVS_PER_STAGE, FC6_WIDTH, WIDTHS, ExportWrapper, TwoStreamSegmenter,
                                       export_onnx)
from training.segmentation_net import SHAPES as NET_SHAPES
from training.segmentation_quantize import quantise

REPO = Path(__file__).resolve().parents[1]


def shape(widths, convs, fc6) -> dict:
    """Constructor arguments of a network; the Deconv stream mirrors the encoder's widths."""
    return {"widths": tuple(widths), "convs_per_stage": tuple(convs), "fc6_width": fc6,
            "deconv_widths": (widths[3], widths[2], widths[1], widths[0])}


INT8 = ", int8"
BASELINE = "base, tie-break switches"  # the network shipped until 2026-12-01; ratios are to it
TIE_BREAK = {"switches": "tie_break"}
SHAPES = {  # every other row keeps its pooling switches as differences (segmentation_net.pool_with_switches)
    BASELINE: {**shape(WIDTHS, CONVS_PER_STAGE, FC6_WIDTH), **TIE_BREAK},
    "base, tie-break switches (second copy)": {**shape(WIDTHS, CONVS_PER_STAGE, FC6_WIDTH), **TIE_BREAK},
    "base": shape(WIDTHS, CONVS_PER_STAGE, FC6_WIDTH),
    "stage 1 doubled": shape((16,) + tuple(WIDTHS[1:]), CONVS_PER_STAGE, FC6_WIDTH),
    "stages 3-5 wider": shape((8, 32, 64, 96, 128), CONVS_PER_STAGE, FC6_WIDTH),
    "stages 4-5 deeper and wider": shape((8, 32, 48, 96, 128), (1, 1, 2, 3, 2), 192),
    "twice the widths": shape(tuple(2 * w for w in WIDTHS), CONVS_PER_STAGE, 2 * FC6_WIDTH),
    "deep (stage 5: 2 x 160, fc6 256; shipped until 2026-12-02)": NET_SHAPES["deep"],
    "deep_light (stage 5: 2 x 128, fc6 192)": NET_SHAPES["deep_light"],
    "wide (stages 4-5: 128, 2 x 256, fc6 384; shipped in int8)": NET_SHAPES["wide"],
    "deep, tie-break switches": {**NET_SHAPES["deep"], **TIE_BREAK},
}


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    crop = np.random.default_rng(0).uniform(0, 255, (1, 3, 128, 128)).astype(np.float32)
    calibration = np.random.default_rng(2).integers(0, 256, (8, 128, 128, 3), dtype=np.uint8)
    sessions, params = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in SHAPES.items():
            net = TwoStreamSegmenter(**kwargs).eval()
            params[name] = sum(p.numel() for p in net.parameters())
            path = Path(tmp) / f"{len(sessions)}.onnx"
            export_onnx(ExportWrapper(net, ("fused",)), path, ("fused",))
            sessions[name] = session(path)
            if kwargs.get("switches", "difference") == "difference":
                quantise(path, path.with_suffix(".int8.onnx"), calibration)
                sessions[name + INT8] = session(path.with_suffix(".int8.onnx"))
                params[name + INT8] = params[name]
        times = {name: [] for name in sessions}
        order = np.random.default_rng(1)
        for _ in range(args.runs):  # a new order every round, so that no shape always comes first
            for name in order.permutation(list(sessions)):
                s = sessions[name]
                t0 = time.perf_counter()
                s.run(None, {"crop_bgr": crop})
                times[name].append((time.perf_counter() - t0) * 1000.0)
    baseline = float(np.median(times[BASELINE]))
    rows = []
    for name, ms in times.items():
        median = float(np.median(ms))
        kwargs = {"switches": "difference", **SHAPES[name.removesuffix(INT8)]}
        rows.append({"shape": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                     "int8": name.endswith(INT8), "parameters": params[name], "ms_median": median,
                     "ratio_to_baseline": median / baseline})
        print(f"{name:56s} {params[name]:>9,d} parameters  {median:5.2f} ms  x{median / baseline:.2f}")
    out = REPO / "bench" / "results" / "segmenter_width_costs.json"
    write_text(out, json.dumps({"runs": args.runs, "onnxruntime": ort.__version__, "baseline": BASELINE,
                                "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
