"""Static int8 quantisation of the run-time segmenter: what models/segmenter.onnx ships as.

    .venv-train/bin/python -m training.segmenter.quantize [--source models/segmenter_streams.onnx]
        [--out models/segmenter.onnx] [--keep-float build/segmenter_float.onnx]
        [--report training/logs/segmentation/quantize.json]

The network of the streams export (the training source, weights stored in float16) is exported again with its fused
output alone, then its ordinary convolutions get int8 weights (per output channel, 7-bit range)
and uint8 activations (per tensor, asymmetric), with scales from min-max calibration on lfw_parts
*train* crops, half of them under a recoloured hand (training.segmenter.data). ONNX Runtime
fuses each DequantizeLinear-Conv-QuantizeLinear into an integer convolution (QDQ format).

What stays float, and why:
  * the depthwise convolutions: the pooling switches (difference x 1e6 before a ReLU, whose sign
    int8 loses: quantising them gave IoU 0.002) and the Deconv head's depthwise score conv;
  * the first two convolutions (the encoder at 128 and 64 px): the first reads the normalised
    image, and quantising the second gave a third of the int8 network's difference from float
    (validation flips 0.96 % -> 0.63 % under hands without it, for x1.12 the time);
  * the 1x1 score convolutions (two outputs each): the logits, where rounding moves the boundary;
  * convolutions writing fewer than `MIN_INT8_OUTPUTS` channels (the DeconvNet stream's last, 8
    channels at 64 px): on an AVX2-only AMD EPYC its int8 form was no faster than float
    (0.61 against 0.55-0.57 ms), and its dequantised NCHW output made the unpooling after it a
    plain Resize of 0.47 ms, where the float conv's blocked output unpools in 0.03 ms
    (network 9.0 -> 8.1 ms of ONNX Runtime kernel time there; validation IoU unchanged to 1e-4).
The 7-bit weights ("reduce_range") keep u8 x s8 products clear of the int16 saturation of
x86 CPUs without VNNI, so that those compute the sums that VNNI CPUs do (not measured on one).

Refuses (leaving --out as it was) when the int8 network parts from the float one on the
lfw_parts *validation* crops at 128x128: mean face IoU lower by more than `MAX_IOU_LOSS` (clean or
under a hand), or more than `MAX_FLIPS` of the pixels changing side of 0.5. Prints both networks'
figures.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.segment.segmentation import network_input
from evaluation.paths import BUILD_DIR, REPO_ROOT

MAX_IOU_LOSS = 0.005
MAX_FLIPS = 0.01
CALIBRATION_CROPS = 160
FLOAT_LEADING = 2
MIN_INT8_OUTPUTS = 16
CALIBRATION_SEED = 7777


def quantisable_convs(model) -> list[str]:
    """Names of the convolutions to quantise: dense (group 1), after the first `FLOAT_LEADING`
    of them (the encoder at 128 and 64 px), writing at least `MIN_INT8_OUTPUTS` channels (not
    the scores, nor the DeconvNet stream's narrow last conv)."""
    from onnx import numpy_helper
    weights = {i.name: numpy_helper.to_array(i).shape for i in model.graph.initializer}
    dense = [(node.name, weights.get(node.input[1])) for node in model.graph.node if node.op_type == "Conv"
             and next((a.i for a in node.attribute if a.name == "group"), 1) == 1]
    return [name for name, shape in dense[FLOAT_LEADING:] if shape is not None and shape[0] >= MIN_INT8_OUTPUTS]


def calibration_crops(count: int = CALIBRATION_CROPS, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """(count, 128, 128, 3) uint8 BGR crops of lfw_parts train faces spread over the split,
    every other one under a recoloured hand."""
    from training.segmenter.data import (composite_hand, crop_affine, face_crop_box, load_hands,
                                            lfw_parts_source, skin_tone_lab, warp_crop)
    source, hands = lfw_parts_source("train"), load_hands()
    crops = []
    for k, i in enumerate(np.linspace(0, len(source) - 1, count).astype(int)):
        image, face = source.load(int(i))
        box = face_crop_box(face)
        if box is None:
            continue
        crop, target = warp_crop(image, face, crop_affine(box))
        if k % 2:
            rng = np.random.default_rng(seed + k)
            crop, _ = composite_hand(crop, target, hands[rng.integers(len(hands))], skin_tone_lab(crop, target), rng)
        crops.append(crop)
    return np.stack(crops)


class _CropReader:
    """onnxruntime.quantization's calibration feed: one crop per call."""

    def __init__(self, crops: np.ndarray, input_name: str):
        self._items = iter([{input_name: network_input(c[None])} for c in crops])

    def get_next(self):
        return next(self._items, None)


def export_float_fused(source: Path, out: Path) -> str:
    """The float graph with the fused output alone, from the network of `source`; its shape name."""
    from training.segmenter.net import RUN_TIME_OUTPUTS, ExportWrapper, export_onnx
    from training.segmenter.onnx_init import load_exported_network, output_difference, reproduces
    net, shape = load_exported_network(source)
    export_onnx(ExportWrapper(net, RUN_TIME_OUTPUTS), out, RUN_TIME_OUTPUTS)
    crops = np.random.default_rng(0).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    difference = output_difference(net, out, crops)
    if not reproduces(difference):
        raise SystemExit(f"the float export of {source} does not reproduce its network: {difference}")
    return shape


def quantise(float_path: Path, out: Path, crops: np.ndarray) -> list[str]:
    """Write the int8 QDQ graph of `float_path` to `out`; returns the quantised node names.
    (onnxruntime.quantization's pre-processing, shape inference and basic optimisations, gave
    the same validation figures to four digits: left out.)"""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_static)
    model = onnx.load(str(float_path))
    names = quantisable_convs(model)
    quantize_static(str(float_path), str(out), _CropReader(crops, model.graph.input[0].name),
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Conv"],
                    nodes_to_quantize=names, extra_options={"ActivationSymmetric": False})
    return names


def fused_probabilities(path: Path, crops: np.ndarray, batch: int = 16) -> np.ndarray:
    """(N, 128, 128) face probabilities of the export at `path` (one ONNX Runtime thread)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(["fused"], {name: network_input(crops[i:i + batch])})[0][:, 0]
                           for i in range(0, len(crops), batch)])


def mean_iou(probability: np.ndarray, targets: np.ndarray) -> float:
    """Mean over crops of the face IoU of the 0.5-thresholded map (1 where both are empty)."""
    from evaluation.segmentation import per_crop_iou
    return float(per_crop_iou(probability > 0.5, targets.astype(bool)).mean())


@dataclass
class Agreement:
    """Float against int8 on one set of validation crops (128x128, before the graph cut)."""
    iou_float: float
    iou_int8: float
    mean_abs_difference: float
    threshold_flips: float

    def acceptable(self) -> bool:
        return self.iou_float - self.iou_int8 <= MAX_IOU_LOSS and self.threshold_flips <= MAX_FLIPS


def agreement(float_path: Path, int8_path: Path, crops: np.ndarray, targets: np.ndarray) -> Agreement:
    a, b = fused_probabilities(float_path, crops), fused_probabilities(int8_path, crops)
    return Agreement(mean_iou(a, targets), mean_iou(b, targets), float(np.abs(a - b).mean()),
                     float(((a > 0.5) != (b > 0.5)).mean()))


def validation_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """lfw_parts validation crops, clean and under a recoloured hand (the seeded sets that
    training selects models on)."""
    from training.segmenter.data import hand_occluded, lfw_parts_source, load_hands, validation_crops
    clean = validation_crops(lfw_parts_source("validation"))
    return {"clean": clean, "hand": hand_occluded(clean, load_hands())}


def main(argv=None) -> int:
    from core.io.files import temporary_beside, write_text
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=REPO_ROOT / "models" / "segmenter_streams.onnx",
                    help="float export holding the network (its streams sibling is used if it has the fused output only)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "segmenter.onnx")
    ap.add_argument("--keep-float", type=Path, default=BUILD_DIR / "segmenter_float.onnx",
                    help="where to keep the float fused graph (what Table 1's float row times)")
    ap.add_argument("--report", type=Path, default=REPO_ROOT / "training" / "logs" / "segmentation" / "quantize.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        shape = export_float_fused(args.source, float_path)
        crops = calibration_crops()
        print(f"network shape {shape!r}; calibrating on {len(crops)} lfw_parts train crops", flush=True)
        names = quantise(float_path, int8_path, crops)
        print(f"quantised {len(names)} convolutions: {', '.join(names)}", flush=True)
        checks = {kind: agreement(float_path, int8_path, *data) for kind, data in validation_sets().items()}
        for kind, c in checks.items():
            print(f"validation {kind:5s}: IoU float {c.iou_float:.4f}  int8 {c.iou_int8:.4f}  "
                  f"mean |dp| {c.mean_abs_difference:.4f}  flips {c.threshold_flips:.4%}", flush=True)
        report = {"source": str(args.source), "shape": shape, "quantised": names,
                  "calibration_crops": int(len(crops)), "checks": {k: asdict(v) for k, v in checks.items()}}
        if not all(c.acceptable() for c in checks.values()):
            raise SystemExit(f"int8 parts from float (IoU loss > {MAX_IOU_LOSS} or flips > {MAX_FLIPS:.0%}); "
                             f"{args.out} left as it was")
        for src, dst in ((int8_path, args.out), (float_path, args.keep_float)):
            with temporary_beside(dst, ".onnx") as t:
                Path(t).write_bytes(src.read_bytes())
        write_text(args.report, json.dumps(report, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), float graph {args.keep_float}, report {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
