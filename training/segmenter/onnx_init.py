"""Start PyTorch training from a shipped segmenter.onnx (when build/segmenter.pt is gone).

The exporter folds every conv + BatchNorm pair into one conv with a bias (initializers named
onnx::Conv_N, in graph order); the other layers keep their PyTorch names under "net.". A folded
pair is loaded as conv weight = folded weight and BatchNorm = identity plus the folded bias
(gamma 1, beta bias, running mean 0, running variance 1 - eps), which reproduces the ONNX
outputs exactly in eval mode. The streams' last layers ship folded into face-minus-background
heads (initializers head_up, head_conv, head_bias; segmentation_net.face_difference_heads); they
are loaded as equivalent two-class layers (segmentation_net.unfold_heads). Fine-tune such a
network with its BatchNorm layers frozen (`freeze_batchnorm`): batch statistics would undo the folded scales.

Every export is a pair (`export_segmenter`): the run-time graph with the fused output alone
(models/segmenter.onnx, what core runs) and beside it the same weights with all three outputs
(models/segmenter_streams.onnx: what training starts from, since only it keeps each stream's
head, and what the Table 1 one-stream rows are measured with). Loading the run-time file loads
its streams sibling. The sibling stores its weights in float16, each cast to float32 as the
graph starts (ONNX Runtime folds the casts when it loads): half the bytes within the models/
budget, the float32 network's outputs to 1e-4 on average; the run-time graph is exported from
the weights the sibling holds. The run-time file that ships is that graph in int8
(training.segmenter.quantize).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from core.segment.segmentation import network_input
from core.segment.segmentation import streams_model_path as streams_path

from training.segmenter.net import TwoStreamSegmenter, unfold_heads


def set_folded(conv: nn.Conv2d, bn: nn.BatchNorm2d, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """A folded conv + BatchNorm pair in the modules: the conv takes the folded weight, the
    BatchNorm becomes the identity (eval mode) plus the folded bias."""
    with torch.no_grad():
        conv.weight.copy_(weight)
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def conv_bn_pairs(net: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every (Conv2d, BatchNorm2d) pair of `net`, in module registration order (= graph order
    of the encoder, fc6, then the Deconv stream)."""
    pairs = []
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) >= 2 \
                and isinstance(module[0], nn.Conv2d) and isinstance(module[1], nn.BatchNorm2d):
            pairs.append((module[0], module[1]))
    return pairs


def _output_names(path: Path) -> list[str]:
    import onnx
    return [o.name for o in onnx.load(str(path)).graph.output]


def training_source(path: Path) -> Path:
    """The export to load weights from: `path` when it has every stream's output, else its
    streams sibling; ValueError when that is missing."""
    path = Path(path)
    if set(_output_names(path)) >= {"fused", "fcn", "deconv"}:
        return path
    sibling = streams_path(path)
    if not sibling.is_file():
        raise ValueError(f"{path} has only the run-time output; its weights load from {sibling}, which is missing")
    return sibling


def store_initializers_in_half(path: Path, min_size: int = 16) -> None:
    """Rewrite the ONNX file at `path` with each float32 initializer of `min_size` or more values
    stored as float16 and cast back to float32 by a node at the graph's start (same name, so
    the graph is otherwise unchanged)."""
    import onnx
    from onnx import helper, numpy_helper
    model = onnx.load(str(path))
    graph, casts = model.graph, []
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or value.size < min_size:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(value.astype(np.float16), f"{name}.float16"))
        casts.append(helper.make_node("Cast", [f"{name}.float16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}.cast"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _round_to_half(tensors) -> None:
    """Round float32 tensors in place to the values float16 can hold."""
    with torch.no_grad():
        for tensor in tensors:
            if tensor is not None and tensor.dtype == torch.float32:
                tensor.copy_(tensor.half().float())


def stored_network(net: nn.Module) -> nn.Module:
    """A copy of `net` as an export stores it: BatchNorm folded into its conv (the BatchNorm
    left as the identity plus the folded bias, as `load_onnx_weights` loads it), every weight
    rounded to float16's values."""
    import copy
    out = copy.deepcopy(net).eval()
    with torch.no_grad():
        for conv, bn in conv_bn_pairs(out):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
                conv.bias.zero_()
            set_folded(conv, bn, conv.weight * scale.view(-1, 1, 1, 1), bias)
    _round_to_half(list(out.parameters()) + list(out.buffers()))
    return out


def export_segmenter(net, out: Path) -> Path:
    """Write `out` (the fused output alone, float32: what training.segmenter.quantize makes
    the int8 file from) and its streams sibling (`streams_path`; weights stored in float16),
    each atomically, both from `stored_network(net)` with its folded heads rounded the same way,
    so that the two compute the same. Returns the sibling's path."""
    from core.io.files import temporary_beside
    from training.segmenter.net import RUN_TIME_OUTPUTS, STREAM_OUTPUTS, ExportWrapper, export_onnx
    stored = stored_network(net)
    for path, outputs in ((streams_path(out), STREAM_OUTPUTS), (Path(out), RUN_TIME_OUTPUTS)):
        wrapper = ExportWrapper(stored, outputs)
        _round_to_half(wrapper.buffers())
        with temporary_beside(path, ".onnx") as tmp:
            export_onnx(wrapper, tmp, outputs)
            if outputs == STREAM_OUTPUTS:
                store_initializers_in_half(tmp)
    return streams_path(out)


def onnx_initializers(path: Path):
    """(named initializers {name without 'net.': array}, folded conv (weight, bias) list in order)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(path))
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:  # initializers stored in float16 (store_initializers_in_half)
        if node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values.pop(node.input[0]).astype(np.float32)
    if "head_dw" in values or "head_conv" not in values and "head_up" in values:
        raise ValueError(f"{path} keeps only some streams' heads: load its streams sibling {streams_path(path)}")
    named = {k[len("net."):]: v for k, v in values.items() if k.startswith("net.")}
    if {"head_up", "head_conv", "head_bias"} <= values.keys():  # an export with folded heads
        named.update({k: v.numpy() for k, v in unfold_heads(
            *(torch.from_numpy(np.array(values[f"head_{n}"])) for n in ("up", "conv", "bias"))).items()})
    folded = []
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) == 3 and node.input[1].startswith("onnx::") \
                and node.input[1] in values and node.input[2] in values:
            folded.append((values[node.input[1]], values[node.input[2]]))
    return named, folded


def switches_of(path: Path) -> str:
    """How an exported segmenter keeps its pooling switches (segmentation_net.pool_with_switches):
    "tie_break" when its graph compares with Equal, else "difference"."""
    import onnx
    return "tie_break" if any(n.op_type == "Equal" for n in onnx.load(str(path)).graph.node) else "difference"


def load_onnx_weights(net: TwoStreamSegmenter, path: Path) -> TwoStreamSegmenter:
    """Copy the weights of `path` into `net` (same architecture); raises ValueError on a mismatch."""
    named, folded = onnx_initializers(path)
    pairs = conv_bn_pairs(net)
    if len(pairs) != len(folded):
        raise ValueError(f"{path}: {len(folded)} folded convolutions, the network has {len(pairs)}")
    state = net.state_dict()
    with torch.no_grad():
        for name, value in named.items():
            if name not in state or tuple(state[name].shape) != value.shape:
                raise ValueError(f"{path}: initializer net.{name} {value.shape} does not fit the network")
            state[name].copy_(torch.from_numpy(np.array(value)))
        for (conv, bn), (weight, bias) in zip(pairs, folded):
            if tuple(conv.weight.shape) != weight.shape:
                raise ValueError(f"{path}: folded conv {weight.shape} does not fit {tuple(conv.weight.shape)}")
            set_folded(conv, bn, torch.from_numpy(np.array(weight)), torch.from_numpy(np.array(bias)))
    return net


def load_exported_network(path: Path) -> tuple[TwoStreamSegmenter, str]:
    """The network of an exported segmenter, whatever its shape (segmentation_net.SHAPES) and
    switches (`switches_of`), in eval mode, and the shape's name; ValueError when none fits."""
    from training.segmenter.net import SHAPES
    path = training_source(path)
    switches = switches_of(path)
    for shape, kwargs in SHAPES.items():
        try:
            return load_onnx_weights(TwoStreamSegmenter(**kwargs, switches=switches), path).eval(), shape
        except ValueError:
            continue
    raise ValueError(f"{path}: no network shape in training.segmenter.net.SHAPES fits its weights")


def freeze_batchnorm(net: nn.Module) -> None:
    """BatchNorm layers in eval mode (running statistics fixed); their affine parameters still learn."""
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


def output_difference(net: TwoStreamSegmenter, path: Path, crops: np.ndarray) -> dict[str, float]:
    """How far `net` (eval) is from ONNX Runtime running `path` on `crops` (N, 128, 128, 3), over
    the outputs `path` has: largest and mean |probability difference|, and the share of pixels
    whose 0.5 threshold differs. The largest can reach ~0.02 on a handful of pixels where two
    values of a pooling window differ by less than float rounding and the switch flips."""
    import onnxruntime as ort
    from training.segmenter.net import ExportWrapper
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = network_input(crops)
    reference = session.run(None, {session.get_inputs()[0].name: x})
    net.eval()
    with torch.no_grad():
        ours = ExportWrapper(net, [o.name for o in session.get_outputs()])(torch.from_numpy(x))
    pairs = [(r, o.numpy()) for r, o in zip(reference, ours)]
    return {"max": float(max(np.abs(r - o).max() for r, o in pairs)),
            "mean": float(np.mean([np.abs(r - o).mean() for r, o in pairs])),
            "threshold_flips": float(np.mean([((r > 0.5) != (o > 0.5)).mean() for r, o in pairs]))}


def reproduces(difference: dict[str, float], stored_in_half: bool = False) -> bool:
    """An `output_difference` small enough to call two networks the same: float rounding only,
    or with `stored_in_half` the float16 rounding of stored weights (`export_segmenter`; mean
    1.4e-4 and 0.014 % of pixels flipped on validation crops under hands)."""
    limit = 1e-3 if stored_in_half else 1e-4
    return difference["mean"] <= limit and difference["threshold_flips"] <= limit


def export_one_stream_graphs(net) -> None:
    """build/segmenter_{fcn,deconv}.onnx: one stream each, what times the Table 1 ablation."""
    from evaluation.paths import BUILD_DIR
    from training.segmenter.net import ExportWrapper, export_onnx
    BUILD_DIR.mkdir(exist_ok=True)
    for stream in ("fcn", "deconv"):
        export_onnx(ExportWrapper(net, (stream,)), BUILD_DIR / f"segmenter_{stream}.onnx", (stream,))


def reexport(source: Path, out: Path) -> dict[str, float]:
    """Export the network of `source` again with today's export graphs (`export_segmenter`: `out`
    and its streams sibling), plus the one-stream graphs in build/ that time Table 1; refuses,
    leaving `out` as it was, when the outputs change."""
    import tempfile
    net, _ = load_exported_network(source)
    crops = np.random.default_rng(0).integers(0, 256, (8, 128, 128, 3), dtype=np.uint8)
    difference = output_difference(net, training_source(source), crops)
    with tempfile.TemporaryDirectory() as tmp:  # checked there first, then written in place
        trial = Path(tmp) / "segmenter.onnx"
        export_segmenter(net, trial)
        again = [output_difference(net, p, crops) for p in (trial, streams_path(trial))]
    if not (reproduces(difference) and all(reproduces(a, stored_in_half=True) for a in again)):
        raise SystemExit(f"re-exporting {source} changed its outputs: {difference}, {again}")
    export_segmenter(net, out)
    export_one_stream_graphs(net)
    return again[0]


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Export a trained segmenter again with today's export graph.")
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    print(f"wrote {args.out}; difference to {args.source}: {reexport(args.source, args.out)}")
