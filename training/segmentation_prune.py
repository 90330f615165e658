"""Prune a trained segmenter into a narrower one, keeping the channels that matter most (issue 3).

The network's cost sits in its 32x32 and 64x64 layers (bench.profile_segmentation), where a
few channels fewer save more time than anything else; on a CPU without AVX-512 the shipped
"deep" network missed the 5 ms budget. Pruning keeps, in each narrowed layer, the channels
whose removal should change the next layers least, then fine-tuning recovers the rest (Li et
al., "Pruning Filters for Efficient ConvNets", ICLR 2017, rank filters by what they carry; here
by mean activation on real crops times the weight that reads them, since a small filter norm
says little after BatchNorm folding).

A stage's output channel k is paired with the DeconvNet channel k that unpools with its
switches, so both lose the same channels; the inner convs of a stage choose their own.
The smaller network starts from the larger one's weights (the output changes: fine-tune it,
BatchNorm frozen, like any network started from an export).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from training.segmentation_net import TwoStreamSegmenter


def _activation_means(net: TwoStreamSegmenter, crops: torch.Tensor) -> dict[nn.Module, torch.Tensor]:
    """Mean of relu(BN output) per channel, over `crops`, for every conv + BN + ReLU block."""
    means, hooks = {}, []
    blocks = [b for stage in net.stages for b in stage] + [net.fc6[0], net.deconv_in, *net.deconvs]

    def hook(block):
        def record(_module, _inputs, output):
            means[block] = F.relu(output).mean((0, 2, 3)).detach()
        return record

    for block in blocks:
        hooks.append(block[1].register_forward_hook(hook(block)))
    try:
        with torch.no_grad():
            net.eval()(crops)
    finally:
        for h in hooks:
            h.remove()
    return means


def _reads(layer: nn.Conv2d) -> torch.Tensor:
    """How strongly `layer` reads each of its input channels (Frobenius norm over the rest)."""
    return layer.weight.detach().transpose(0, 1).flatten(1).norm(dim=1)


def channel_importance(net: TwoStreamSegmenter, crops: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per narrowable layer, one score per output channel: activation x how much is read.

    Keys "stage{s}.{k}" (conv k of encoder stage s); a stage's last conv also counts its paired
    DeconvNet channel, each side normalised to sum 1 so that neither dominates by scale."""
    means = _activation_means(net, crops)
    scores = {}
    for s, stage in enumerate(net.stages):
        for k, block in enumerate(stage):
            last = k == len(stage) - 1
            if not last:
                readers = [stage[k + 1][0]]
            else:
                readers = [net.stages[s + 1][0][0]] if s + 1 < len(net.stages) else [net.fc6[0][0]]
                readers += {2: [net.score3], 3: [net.score4]}.get(s, [])
            enc = means[block] * sum(_reads(r) for r in readers)
            if last:
                j = len(net.stages) - 2 - s  # the DeconvNet conv whose output unpools with these switches
                paired = net.deconvs[j] if j >= 0 else net.deconv_in
                reader = net.deconvs[j + 1][0] if j + 1 < len(net.deconvs) else net.deconv_score
                dec = means[paired] * _reads(reader)
                enc = enc / enc.sum().clamp_min(1e-12) + dec / dec.sum().clamp_min(1e-12)
            scores[f"stage{s}.{k}"] = enc
    return scores


def narrower(shape: dict, than: dict) -> bool:
    """Whether network shape `shape` (segmentation_net.SHAPES constructor arguments) is `than`
    with some layers narrower and none wider or deeper: what `prune` can make."""
    same_depth = tuple(shape["convs_per_stage"]) == tuple(than["convs_per_stage"])
    widths = list(shape["widths"]) + list(shape["deconv_widths"]) + [shape["fc6_width"]]
    others = list(than["widths"]) + list(than["deconv_widths"]) + [than["fc6_width"]]
    return same_depth and widths != others and all(a <= b for a, b in zip(widths, others))


def _take(block: nn.Sequential, into: nn.Sequential, out_idx, in_idx) -> None:
    """Copy conv + BN `block` restricted to output channels out_idx and input channels in_idx."""
    conv, bn = block[0], block[1]
    into[0].weight.copy_(conv.weight[out_idx][:, in_idx])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(into[1], name).copy_(getattr(bn, name)[out_idx])


@torch.no_grad()
def prune(large: TwoStreamSegmenter, small: TwoStreamSegmenter, crops: np.ndarray) -> TwoStreamSegmenter:
    """Copy into `small` (same depth, widths at most `large`'s) the most important channels of
    `large` (`channel_importance` on `crops`, (N, 128, 128, 3) uint8 BGR); returns `small`.
    Raises ValueError when `small` is deeper, wider anywhere, or keeps its switches another way."""
    if large.switches != small.switches:
        raise ValueError(f"the networks keep their switches differently: {large.switches!r}, {small.switches!r}")
    if [len(s) for s in large.stages] != [len(s) for s in small.stages]:
        raise ValueError("pruning keeps every conv: the networks must have the same depth")
    if small.fc6[0][0].out_channels != large.fc6[0][0].out_channels:
        raise ValueError("pruning leaves fc6 as it is")
    x = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32))
    scores = channel_importance(large, x)
    keep = {}
    for s, (l_stage, s_stage) in enumerate(zip(large.stages, small.stages)):
        for k, (l_block, s_block) in enumerate(zip(l_stage, s_stage)):
            n = s_block[0].out_channels
            if n > l_block[0].out_channels:
                raise ValueError(f"stage {s} conv {k}: {n} channels, more than the {l_block[0].out_channels} it prunes")
            keep[(s, k)] = torch.sort(torch.topk(scores[f"stage{s}.{k}"], n).indices).values
    stage_out = [keep[(s, len(st) - 1)] for s, st in enumerate(large.stages)]
    previous = torch.arange(3)
    for s, (l_stage, s_stage) in enumerate(zip(large.stages, small.stages)):
        for k, (l_block, s_block) in enumerate(zip(l_stage, s_stage)):
            _take(l_block, s_block, keep[(s, k)], previous)
            previous = keep[(s, k)]
    all_fc6 = torch.arange(large.fc6[0][0].out_channels)
    _take(large.fc6[0], small.fc6[0], all_fc6, previous)
    small.score5.load_state_dict(large.score5.state_dict())
    for name, s in (("score4", 3), ("score3", 2)):
        getattr(small, name).weight.copy_(getattr(large, name).weight[:, stage_out[s]])
        getattr(small, name).bias.copy_(getattr(large, name).bias)
    for name in ("up5", "up4", "up3", "fuse"):
        getattr(small, name).load_state_dict(getattr(large, name).state_dict())
    _take(large.deconv_in, small.deconv_in, stage_out[4], all_fc6)
    previous = stage_out[4]
    for j, (l_block, s_block) in enumerate(zip(large.deconvs, small.deconvs)):
        out = stage_out[len(large.stages) - 2 - j]  # unpooled next with the switches of that stage
        _take(l_block, s_block, out, previous)
        previous = out
    small.deconv_score.weight.copy_(large.deconv_score.weight[:, previous])
    small.deconv_score.bias.copy_(large.deconv_score.bias)
    return small
