"""The two-stream face segmentation network (Saito, Li & Li, ECCV 2016, §4), sized for a CPU.

One shared encoder of five conv + max-pool stages (128 -> 64 -> 32 -> 16 -> 8 -> 4), a small
"fc6" conv on pool5, and two decoders:
  * FCN-8s stream: a score from pool5 (not from fc7, as the paper does), upsampled x2 and added to
    the score of pool4, upsampled x2 and added to the score of pool3, upsampled x8 to 128x128;
  * DeconvNet stream: mirrored max-unpooling with the encoder's pooling switches, each followed by
    a 3x3 conv + BN + ReLU, down to a 2-channel score at 128x128.
The two 2-channel scores are concatenated and a 1x1 conv gives the fused score. Training loss:
0.5 * CE(fcn) + 0.5 * CE(deconv) + 1.0 * CE(fused).

Widths: VGG-16 (64..512, 13 convs) costs ~5 GMAC at 128x128, far beyond 5 ms on one core. We keep
VGG's shape (two convs in early stages, widths doubling) at WIDTHS = (16, 32, 48, 64, 96), which
measured ~3 ms per 128x128 crop in ONNX Runtime 1.20.1 on one thread of this machine (see
bench/bench_segmentation.py); a face/non-face task needs far fewer features than 21-class VOC.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (8, 32, 48, 64, 96)      # channels of encoder stages 1..5
CONVS_PER_STAGE = (1, 1, 2, 2, 1)  # 3x3 convs before each pooling
DECONV_WIDTHS = (64, 48, 32, 8)  # conv after unpooling to 8, 16, 32, 64 px; at 128 px the score
FC6_WIDTH = 128
INPUT_SIZE = 128
STREAMS = ("fcn", "deconv", "fused")
LOSS_WEIGHTS = {"fcn": 0.5, "deconv": 0.5, "fused": 1.0}


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """Weights that make a ConvTranspose2d (groups=1, per-channel diagonal) a bilinear upsampler."""
    factor = (kernel + 1) // 2
    center = factor - 1 if kernel % 2 == 1 else factor - 0.5
    og = torch.arange(kernel, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    filt = filt1d[:, None] * filt1d[None, :]
    weight = torch.zeros(channels, channels, kernel, kernel)
    for c in range(channels):
        weight[c, c] = filt
    return weight


def upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable x`factor` upsampling initialised to bilinear interpolation (as FCN does)."""
    kernel = 2 * factor
    layer = nn.ConvTranspose2d(channels, channels, kernel, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, kernel))
    return layer


def pool_with_switches(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2x2 max pooling and its switches as a {0, 1} mask at the input resolution.

    A tiny fixed offset per position in each 2x2 window (1e-5 x 0..3) makes the arg-max unique,
    so the mask marks exactly one pixel per window, as the switches of nn.MaxPool2d do. Why not
    MaxPool2d(return_indices=True) + MaxUnpool2d: the TorchScript ONNX exporter has no symbolic
    for aten::max_unpool2d, and ONNX Runtime's MaxPool with an indices output takes a slow
    NCHW path (4.5 ms of a 12 ms net here, against ~0.3 ms for this form).
    """
    h, w = x.shape[-2], x.shape[-1]
    tie_break = torch.tensor([[3.0, 2.0], [1.0, 0.0]], dtype=x.dtype) * 1e-5
    x = x + tie_break.repeat(int(h) // 2, int(w) // 2)
    pooled = F.max_pool2d(x, 2)
    switches = (x == F.interpolate(pooled, scale_factor=2.0, mode="nearest")).to(x.dtype)
    return pooled, switches


def max_unpool2x(values: torch.Tensor, switches: torch.Tensor) -> torch.Tensor:
    """Max-unpooling by 2: each value goes back to the position its window's maximum came from."""
    return F.interpolate(values, scale_factor=2.0, mode="nearest") * switches


class TwoStreamSegmenter(nn.Module):
    """Input: (N, 3, 128, 128) float BGR in 0..255. Output: dict of (N, 2, 128, 128) scores."""

    def __init__(self, widths=WIDTHS, convs_per_stage=CONVS_PER_STAGE, fc6_width=FC6_WIDTH,
                 deconv_widths=DECONV_WIDTHS):
        super().__init__()
        stages, cin = [], 3
        for width, n in zip(widths, convs_per_stage):
            layers = [conv_bn_relu(cin if i == 0 else width, width) for i in range(n)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.fc6 = nn.Sequential(conv_bn_relu(widths[4], fc6_width), nn.Dropout2d(0.1))
        # FCN-8s stream
        self.score5 = nn.Conv2d(fc6_width, 2, 1)
        self.score4 = nn.Conv2d(widths[3], 2, 1)
        self.score3 = nn.Conv2d(widths[2], 2, 1)
        self.up5 = upsampler(2, 2)
        self.up4 = upsampler(2, 2)
        self.up3 = upsampler(2, 8)
        # DeconvNet stream: mirror of the encoder, one conv after each unpooling
        self.deconv_in = conv_bn_relu(fc6_width, widths[4], 1)
        ins = (widths[4],) + tuple(deconv_widths[:-1])
        self.deconvs = nn.ModuleList(conv_bn_relu(w_in, w_out) for w_in, w_out in zip(ins, deconv_widths))
        self.deconv_score = nn.Conv2d(deconv_widths[-1], 2, 3, padding=1)  # after the last unpooling
        self.fuse = nn.Conv2d(4, 2, 1)
        with torch.no_grad():  # start the fusion as the mean of the two streams
            self.fuse.weight.zero_()
            for c in range(2):
                self.fuse.weight[c, c] = 0.5
                self.fuse.weight[c, c + 2] = 0.5
            self.fuse.bias.zero_()

    def encode(self, x: torch.Tensor):
        """pool1..pool5 outputs, their switch masks, and fc6 on pool5."""
        x = x * (1.0 / 127.5) - 1.0
        pooled, switches = [], []
        for stage in self.stages:
            x, switch = pool_with_switches(stage(x))
            pooled.append(x)
            switches.append(switch)
        return pooled, switches, self.fc6(x)

    def fcn_stream(self, pooled, top) -> torch.Tensor:
        s = self.up5(self.score5(top)) + self.score4(pooled[3])
        s = self.up4(s) + self.score3(pooled[2])
        return self.up3(s)

    def deconv_stream(self, switches, top) -> torch.Tensor:
        d = self.deconv_in(top)
        for k, layer in zip(range(4, 0, -1), self.deconvs):
            d = layer(max_unpool2x(d, switches[k]))
        return self.deconv_score(max_unpool2x(d, switches[0]))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled, switches, top = self.encode(x)
        fcn = self.fcn_stream(pooled, top)
        deconv = self.deconv_stream(switches, top)
        fused = self.fuse(torch.cat([fcn, deconv], dim=1))
        return {"fcn": fcn, "deconv": deconv, "fused": fused}


def soft_jaccard_loss(score: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over crops of 1 - soft IoU between the face probability and the target. Weighs every
    crop alike, as the mean face IoU we select on does, where cross-entropy weighs pixels alike
    and so lets a face mostly hidden by a hand count little. A crop without face scores its
    predicted face area against a small constant, so it is pushed towards an empty mask."""
    p = torch.softmax(score, dim=1)[:, 1]
    t = target.float()
    inter = (p * t).sum((1, 2))
    union = (p + t - p * t).sum((1, 2))
    return (1.0 - (inter + 1.0) / (union + 1.0)).mean()


def segmentation_loss(scores: dict[str, torch.Tensor], target: torch.Tensor,
                      weight: torch.Tensor | None = None, iou_weight: float = 0.0) -> torch.Tensor:
    """0.5 * CE(fcn) + 0.5 * CE(deconv) + 1.0 * CE(fused), pixels weighted by `weight` if given,
    plus `iou_weight` * soft_jaccard_loss(fused)."""
    total = 0.0
    for name, w in LOSS_WEIGHTS.items():
        ce = F.cross_entropy(scores[name], target, reduction="none")
        total = total + w * (ce.mean() if weight is None else (ce * weight).sum() / weight.sum())
    if iou_weight > 0:
        total = total + iou_weight * soft_jaccard_loss(scores["fused"], target)
    return total


class ExportWrapper(nn.Module):
    """The graph that ships: BGR crop (N, 3, 128, 128) float 0..255 -> face probabilities
    (N, 1, 128, 128) of the fused, FCN and Deconv streams, in this output order."""

    def __init__(self, net: TwoStreamSegmenter, outputs=("fused", "fcn", "deconv")):
        super().__init__()
        self.net = net
        self.outputs = outputs

    def forward(self, x):
        scores = self.net(x)
        # softmax over two classes, face channel = sigmoid of the score difference
        return tuple(torch.sigmoid(scores[k][:, 1:2] - scores[k][:, 0:1]) for k in self.outputs)


class StreamOnly(nn.Module):
    """The network cut down to one stream, for timing the Table 1 ablation honestly."""

    def __init__(self, net: TwoStreamSegmenter, stream: str):
        super().__init__()
        self.net, self.stream = net, stream

    def forward(self, x):
        pooled, switches, top = self.net.encode(x)
        if self.stream == "fcn":
            s = self.net.fcn_stream(pooled, top)
        else:
            s = self.net.deconv_stream(switches, top)
        return torch.sigmoid(s[:, 1:2] - s[:, 0:1])


def export_onnx(module: nn.Module, path, output_names) -> None:
    """Export with the TorchScript exporter (opset 17), batch axis dynamic."""
    module.eval()
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(module, dummy, str(path), input_names=["crop_bgr"], output_names=list(output_names),
                      dynamic_axes={"crop_bgr": {0: "n"}, **{k: {0: "n"} for k in output_names}},
                      opset_version=17, do_constant_folding=True, dynamo=False)
