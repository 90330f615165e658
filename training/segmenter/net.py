"""The two-stream face segmentation network (Saito, Li & Li, ECCV 2016, §4), sized for a CPU.

One shared encoder of five conv + max-pool stages (128 -> 64 -> 32 -> 16 -> 8 -> 4), a small
"fc6" conv on pool5, and two decoders:
  * FCN-8s stream: a score from pool5 (not from fc7, as the paper does), upsampled x2 and added to
    the score of pool4, upsampled x2 and added to the score of pool3, upsampled x8 to 128x128;
  * DeconvNet stream: mirrored max-unpooling with the encoder's pooling switches, each followed by
    a 3x3 conv + BN + ReLU, down to a 2-channel score at 128x128.
The two 2-channel scores are concatenated and a 1x1 conv gives the fused score. Training loss:
0.5 * CE(fcn) + 0.5 * CE(deconv) + 1.0 * CE(fused).

Widths: VGG-16 (64..512, 13 convs) costs ~5 GMAC at 128x128, far beyond 5 ms on one core. The
"base" shape keeps VGG's outline (two convs in the middle stages, widths growing) at WIDTHS =
(8, 32, 48, 64, 96), chosen by timing untrained exports on one ONNX Runtime thread
(untrained exports timed on one thread); a face/non-face task needs far fewer features than 21-class
VOC. What ships is the "wide" shape (SHAPES), grown from a trained "deep" network, itself grown
from a trained base network: the added capacity sits at 16x16, 8x8 and 4x4, where it is cheap,
and cheaper still in int8 (training.segmenter.quantize).
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
# Named network shapes (constructor arguments). "deep" adds capacity where it is cheap, at 8x8
# and 4x4: stage 5 two convs of 160, fc6 256 (2.5x the parameters for ~1.15x the time); grown
# from "base" by training.segmenter.widen. "wide", what ships, grows "deep" at 16x16, 8x8 and 4x4.
SHAPES = {
    "base": {"widths": WIDTHS, "convs_per_stage": CONVS_PER_STAGE, "fc6_width": FC6_WIDTH,
             "deconv_widths": DECONV_WIDTHS},
    "deep": {"widths": WIDTHS[:4] + (160,), "convs_per_stage": CONVS_PER_STAGE[:4] + (2,), "fc6_width": 256,
             "deconv_widths": DECONV_WIDTHS},
    # "deep" with stages 4-5 at 128 and 2 x 256 channels, fc6 384 (2.5x the parameters): in int8
    # (training.segmenter.quantize) x1.15 the time of "deep" in int8, where float costs x1.54
    "wide": {"widths": (8, 32, 48, 128, 256), "convs_per_stage": CONVS_PER_STAGE[:4] + (2,), "fc6_width": 384,
             "deconv_widths": (128,) + DECONV_WIDTHS[1:]},
}
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


SWITCHES = ("difference", "tie_break")  # how the pooling switches are kept (pool_with_switches)
SWITCH_SHARPNESS = 1e6  # "difference" unpooling: a value lands where its window's maximum was


def _depthwise(x: torch.Tensor, scale: float) -> torch.Tensor:
    """scale * x as a 1x1 depthwise conv: the form ONNX Runtime keeps in its blocked NCHWc layout
    (a Sub or a Mul by a constant would be reordered to NCHW and back)."""
    c = int(x.shape[1])
    return F.conv2d(x, torch.full((c, 1, 1, 1), float(scale)), groups=c)


def pool_with_switches(z: torch.Tensor, mode: str = "difference") -> tuple[torch.Tensor, torch.Tensor]:
    """2x2 max pooling of relu(z) and its switches at the input resolution, where `z` is the
    stage's last conv + BN before its ReLU. Returns (pooled, switches), kept one of two ways.

    "difference" (the default): z minus its window's maximum, 0 where the maximum was and
    negative elsewhere; `max_unpool2x` turns it into relu(value + 1e6 * difference). Before the
    ReLU the maximum is unique even where relu(z) is zero all over the window, and every op stays
    in ONNX Runtime's blocked NCHWc layout: 12 % less time for the network than the mask below
    (ONNX Runtime profile). Pooling commutes with the ReLU: pooled = relu(max z).
    "tie_break" (what the first five runs of scripts/retrain_segmenter.sh train with): a {0, 1} mask of the
    arg-max of relu(z), made unique by a tiny fixed offset per position in each window (1e-5 x
    0..3: the top-left wins a window of zeros), as the switches of nn.MaxPool2d; its Equal / Cast
    ops leave the blocked layout (reorders both ways). Moving a network from one to the other
    changes only where all-zero windows unpool (lfw_parts validation IoU 0.910 -> 0.904 before
    any fine-tuning, for the "deep" network).
    Why not MaxPool2d(return_indices=True) + MaxUnpool2d: the TorchScript ONNX exporter has no
    symbolic for aten::max_unpool2d, and ONNX Runtime's MaxPool with an indices output takes a
    slow NCHW path (4.5 ms of a 12 ms net here).
    """
    if mode == "tie_break":
        x = F.relu(z)
        h, w = x.shape[-2], x.shape[-1]
        tie_break = torch.tensor([[3.0, 2.0], [1.0, 0.0]], dtype=x.dtype) * 1e-5
        x = x + tie_break.repeat(int(h) // 2, int(w) // 2)
        pooled = F.max_pool2d(x, 2)
        switches = (x == F.interpolate(pooled, scale_factor=2.0, mode="nearest")).to(x.dtype)
        return pooled, switches
    if mode != "difference":
        raise ValueError(f"switches must be one of {SWITCHES}, got {mode!r}")
    top = F.max_pool2d(z, 2)
    up = F.interpolate(top, scale_factor=2.0, mode="nearest")
    if torch.onnx.is_in_onnx_export():
        return F.relu(top), z + _depthwise(up, -1.0)  # the same floats: -1 * up is exact
    return F.relu(top), (z - up).detach()  # switches carry no gradient, as the mask's Equal does not


def preactivation(stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """A stage's output before its last ReLU (its blocks are conv + BN + ReLU)."""
    last = stage[-1]
    return last[1](last[0](stage[:-1](x)))


def max_unpool2x(values: torch.Tensor, switches: torch.Tensor, mode: str = "difference") -> torch.Tensor:
    """Max-unpooling by 2: each value goes back to the position its window's maximum came from."""
    up = F.interpolate(values, scale_factor=2.0, mode="nearest")
    if mode == "tie_break":
        return up * switches
    if torch.onnx.is_in_onnx_export():  # the add fuses into the depthwise conv, the ReLU too
        return F.relu(up + _depthwise(switches, SWITCH_SHARPNESS))
    return F.relu(up + SWITCH_SHARPNESS * switches)


class TwoStreamSegmenter(nn.Module):
    """Input: (N, 3, 128, 128) float BGR in 0..255. Output: dict of (N, 2, 128, 128) scores."""

    def __init__(self, widths=WIDTHS, convs_per_stage=CONVS_PER_STAGE, fc6_width=FC6_WIDTH,
                 deconv_widths=DECONV_WIDTHS, switches: str = "difference"):
        super().__init__()
        if switches not in SWITCHES:
            raise ValueError(f"switches must be one of {SWITCHES}, got {switches!r}")
        self.switches = switches  # how pooling switches are kept (pool_with_switches)
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
            x, switch = pool_with_switches(preactivation(stage, x), self.switches)
            pooled.append(x)
            switches.append(switch)
        return pooled, switches, self.fc6(x)

    def fcn_coarse(self, pooled, top) -> torch.Tensor:
        """The FCN-8s stream's score at 16x16, before its last (x8) upsampling."""
        s = self.up5(self.score5(top)) + self.score4(pooled[3])
        return self.up4(s) + self.score3(pooled[2])

    def fcn_stream(self, pooled, top) -> torch.Tensor:
        return self.up3(self.fcn_coarse(pooled, top))

    def deconv_features(self, switches, top) -> torch.Tensor:
        """The DeconvNet stream unpooled back to 128x128, before its score conv."""
        d = self.deconv_in(top)
        for k, layer in zip(range(4, 0, -1), self.deconvs):
            d = layer(max_unpool2x(d, switches[k], self.switches))
        return max_unpool2x(d, switches[0], self.switches)

    def deconv_stream(self, switches, top) -> torch.Tensor:
        return self.deconv_score(self.deconv_features(switches, top))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_with_features(x)[0]

    def forward_with_features(self, x: torch.Tensor):
        """(scores, features): the three streams' scores, and pool3 (16x16) and the DeconvNet
        stream's 128x128 features before its score conv."""
        pooled, switches, top = self.encode(x)
        fcn = self.fcn_stream(pooled, top)
        features = self.deconv_features(switches, top)
        deconv = self.deconv_score(features)
        fused = self.fuse(torch.cat([fcn, deconv], dim=1))
        return {"fcn": fcn, "deconv": deconv, "fused": fused}, {"pool3": pooled[2], "deconv": features}


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


def distillation_loss(scores: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-pixel KL divergence from the teacher's two-class probabilities to the student's,
    averaged over pixels and weighted over the streams as the segmentation loss is."""
    total = 0.0
    for name, w in LOSS_WEIGHTS.items():
        target = F.softmax(teacher[name], dim=1)
        kl = (target * (F.log_softmax(teacher[name], dim=1) - F.log_softmax(scores[name], dim=1))).sum(1)
        total = total + w * kl.mean()
    return total


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


def face_difference_heads(net: TwoStreamSegmenter, outputs) -> dict[str, torch.Tensor]:
    """The last layers of the streams folded into one face-minus-background score per output.

    A stream's face probability is sigmoid(score_face - score_background), and its last layers
    (the x8 upsampling of the FCN stream, the 3x3 score conv of the Deconv stream, the 1x1 fusion)
    are linear, so the difference can be computed directly: one x8 transposed convolution of the
    16x16 FCN score with a channel per output that needs it, one 3x3 conv of the unpooled Deconv
    features likewise, summed. Same probabilities (to float rounding) as the two-class layers,
    without their 128x128 two-channel maps and the fusion conv (~5 % of the network's time).
    Returns the transposed-conv weight "up" (2, n_up, k, k), conv weight "conv" (n_conv, C, 3, 3)
    and bias "bias" (n_conv,), and the channel each output reads ("up_index"/"conv_index", -1: none).
    """
    up, conv = net.up3.weight, net.deconv_score.weight
    up_diff = up[:, 1:2] - up[:, 0:1]
    conv_diff, conv_bias_diff = conv[1:2] - conv[0:1], net.deconv_score.bias[1:2] - net.deconv_score.bias[0:1]
    fuse_diff = net.fuse.weight[1, :, 0, 0] - net.fuse.weight[0, :, 0, 0]  # over (fcn bg, fcn face, deconv bg, deconv face)
    fused_up = (up * fuse_diff[:2].view(1, 2, 1, 1)).sum(1, keepdim=True)
    fused_conv = (conv * fuse_diff[2:].view(2, 1, 1, 1)).sum(0, keepdim=True)
    fused_bias = (net.fuse.bias[1] - net.fuse.bias[0] + (fuse_diff[2:] * net.deconv_score.bias).sum()).view(1)
    ups, convs, biases, up_index, conv_index = [], [], [], {}, {}
    for name in outputs:
        up_index[name] = conv_index[name] = -1
        if name in ("fused", "fcn"):
            up_index[name] = len(ups)
            ups.append(fused_up if name == "fused" else up_diff)
        if name in ("fused", "deconv"):
            conv_index[name] = len(convs)
            convs.append(fused_conv if name == "fused" else conv_diff)
            biases.append(fused_bias if name == "fused" else conv_bias_diff)
    return {"up": torch.cat(ups, 1) if ups else None, "conv": torch.cat(convs, 0) if convs else None,
            "bias": torch.cat(biases) if biases else None, "up_index": up_index, "conv_index": conv_index}


def _channel(x: torch.Tensor, k: int) -> torch.Tensor:
    """Channel k of x, kept 4-D; x itself when it has one channel (no Slice op in the export)."""
    return x if x.shape[1] == 1 else x[:, k:k + 1]


RUN_TIME_OUTPUTS = ("fused",)          # models/segmenter.onnx: what core and the add-on run
STREAM_OUTPUTS = ("fused", "fcn", "deconv")  # models/segmenter_streams.onnx: training source, ablations


class ExportWrapper(nn.Module):
    """The graph that ships: BGR crop (N, 3, 128, 128) float 0..255 -> face probabilities
    (N, 1, 128, 128) of `outputs` (default the fused, FCN and Deconv streams, in this order), with
    the streams' last layers folded (`face_difference_heads`). A single stream gives the one-stream
    graph that times the Table 1 ablation (the exporter drops what it does not use).

    A graph with one Deconv-side head ("fused" alone, or "deconv" alone) computes its 3x3 score
    conv of the 8-channel 128x128 unpooled map as a depthwise conv summed over channels (initializer
    head_dw instead of head_conv): the same sums in another order, and ONNX Runtime runs a one-channel
    output conv at a fifth of its usual speed (bench.profile_segmentation). Each output costs its
    head, which ONNX Runtime computes whether asked for or not, so run time uses ("fused",)."""

    def __init__(self, net: TwoStreamSegmenter, outputs=STREAM_OUTPUTS):
        super().__init__()
        self.net = net
        self.outputs = tuple(outputs)
        with torch.no_grad():  # named initializers head_up / head_conv or head_dw / head_bias in the export
            heads = face_difference_heads(net, self.outputs)
        conv = heads["conv"]
        self.depthwise = conv is not None and conv.shape[0] == 1
        if self.depthwise:
            heads["dw"], heads["conv"] = conv.reshape(conv.shape[1], 1, 3, 3), None
        for name in ("up", "conv", "dw", "bias"):
            value = heads.get(name)
            self.register_buffer(f"head_{name}", None if value is None else value.detach().clone())
        self.up_index, self.conv_index = heads["up_index"], heads["conv_index"]

    def forward(self, x):
        net = self.net
        pooled, switches, top = net.encode(x)
        up = conv = None
        if self.head_up is not None:
            up = F.conv_transpose2d(net.fcn_coarse(pooled, top), self.head_up, stride=net.up3.stride,
                                    padding=net.up3.padding)
        if self.depthwise:
            features = net.deconv_features(switches, top)
            conv = F.conv2d(features, self.head_dw, padding=1, groups=self.head_dw.shape[0]).sum(1, keepdim=True) \
                + self.head_bias.view(1, 1, 1, 1)
        elif self.head_conv is not None:
            conv = F.conv2d(net.deconv_features(switches, top), self.head_conv, self.head_bias, padding=1)
        results = []
        for name in self.outputs:
            i, j = self.up_index[name], self.conv_index[name]
            score = (_channel(up, i) if i >= 0 else 0) + (_channel(conv, j) if j >= 0 else 0)
            results.append(torch.sigmoid(score))
        return tuple(results)


def unfold_heads(up: torch.Tensor, conv: torch.Tensor, bias: torch.Tensor) -> dict[str, torch.Tensor]:
    """Two-class head layers that give exactly the folded heads of an export with the default
    outputs (up and conv channels: fused, then fcn / deconv): background channels carry the fused
    parts, face channels add the stream's difference, and the fusion reads the background
    channels. An equivalent network, not the same parameters: fine-tuning starts where the
    exported model is."""
    fused_up, fcn_up = up[:, 0:1], up[:, 1:2]
    fused_conv, deconv_conv = conv[0:1], conv[1:2]
    fuse_weight = torch.zeros(2, 4, 1, 1)
    fuse_weight[1, 0] = fuse_weight[1, 2] = 1.0
    return {"up3.weight": torch.cat([fused_up, fused_up + fcn_up], 1),
            "deconv_score.weight": torch.cat([fused_conv, fused_conv + deconv_conv], 0),
            "deconv_score.bias": torch.stack([torch.zeros(()), bias[1]]),
            "fuse.weight": fuse_weight, "fuse.bias": torch.stack([torch.zeros(()), bias[0]])}


def export_onnx(module: nn.Module, path, output_names) -> None:
    """Export with the TorchScript exporter (opset 17), batch axis dynamic."""
    module.eval()
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(module, dummy, str(path), input_names=["crop_bgr"], output_names=list(output_names),
                      dynamic_axes={"crop_bgr": {0: "n"}, **{k: {0: "n"} for k in output_names}},
                      opset_version=17, do_constant_folding=True, dynamo=False)
