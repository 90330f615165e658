"""Grow a trained segmenter into a wider and deeper one that computes the same function.

The shipped network underfits the hand-occluded crops (training.segmenter.diagnose_hands: equal IoU on
training and validation crops), and capacity is cheapest in the deep, low-resolution layers
(training.segmenter.width_costs). Training a larger network from scratch takes the whole 4.5 h
chain again; Net2Net (Chen, Goodfellow & Shlens, ICLR 2016) instead starts the larger one where
the small one ended:
  * a wider layer keeps the old filters in its first channels; the new output channels keep the
    larger network's random initialisation, and the next layer reads them with zero weights, so
    the output is unchanged while every new weight still gets a gradient;
  * an added conv in a stage starts as the identity (its input is a ReLU output, so
    ReLU(identity) = identity), with BatchNorm as the identity too.
Exact for networks that keep their pooling switches as a tie-broken mask ("tie_break"). With
"difference" switches, read before the stage's last ReLU, an added last conv makes that input
the ReLU's output, so all-zero windows then unpool to all four positions: grow a "tie_break"
network and change its switches afterwards (train_segmentation.load_exported does).
The source network must come from `segmentation_onnx_init.load_onnx_weights` or be in eval mode
with its BatchNorm folded the same way; the grown network is meant to be fine-tuned with
BatchNorm frozen (`freeze_batchnorm`), like any network started from an exported model.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from training.segmenter.net import TwoStreamSegmenter


def _copy_conv(src: nn.Conv2d, dst: nn.Conv2d) -> None:
    """Old filters into the first channels of `dst`; new inputs of old filters read zero, new
    outputs keep their random initialisation."""
    o, i = src.weight.shape[:2]
    if dst.weight.shape[0] < o or dst.weight.shape[1] < i or dst.weight.shape[2:] != src.weight.shape[2:]:
        raise ValueError(f"cannot grow a conv {tuple(src.weight.shape)} into {tuple(dst.weight.shape)}")
    dst.weight[:o].zero_()
    dst.weight[:o, :i] = src.weight
    if src.bias is not None:
        dst.bias[:o] = src.bias
    elif dst.bias is not None:
        dst.bias[:o].zero_()


def _identity_bn(bn: nn.BatchNorm2d, start: int = 0) -> None:
    bn.weight[start:].fill_(1.0)
    bn.bias[start:].zero_()
    bn.running_mean[start:].zero_()
    bn.running_var[start:].fill_(1.0 - bn.eps)


def _copy_conv_bn(src: nn.Sequential, dst: nn.Sequential) -> None:
    """A conv + BatchNorm + ReLU block grown: old channels exact, new channels' BatchNorm identity."""
    _copy_conv(src[0], dst[0])
    o = src[0].weight.shape[0]
    _identity_bn(dst[1], o)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst[1], name)[:o] = getattr(src[1], name)


def _identity_block(block: nn.Sequential) -> None:
    """A 3x3 conv + BatchNorm + ReLU that passes its (non-negative) input through unchanged."""
    conv = block[0]
    if conv.weight.shape[0] != conv.weight.shape[1]:
        raise ValueError("an added conv must keep its width")
    conv.weight.zero_()
    centre = conv.weight.shape[-1] // 2
    for c in range(conv.weight.shape[0]):
        conv.weight[c, c, centre, centre] = 1.0
    _identity_bn(block[1])


@torch.no_grad()
def grow(small: TwoStreamSegmenter, large: TwoStreamSegmenter) -> TwoStreamSegmenter:
    """Copy `small` into `large` (every width and stage depth at least as large) so that both give
    the same scores; returns `large`. Raises ValueError when `large` is smaller anywhere or keeps
    its pooling switches another way."""
    if small.switches != large.switches:
        raise ValueError(f"the networks keep their switches differently: {small.switches!r}, {large.switches!r}")
    # (exact for "tie_break" switches; see the module's docstring for "difference")
    for s_stage, l_stage in zip(small.stages, large.stages):
        if len(l_stage) < len(s_stage):
            raise ValueError("the larger network has fewer convs in a stage")
        for k, block in enumerate(l_stage):
            if k < len(s_stage):
                _copy_conv_bn(s_stage[k], block)
            else:
                _identity_block(block)
    _copy_conv_bn(small.fc6[0], large.fc6[0])
    for name in ("score5", "score4", "score3", "deconv_score", "fuse"):
        _copy_conv(getattr(small, name), getattr(large, name))
    for name in ("up5", "up4", "up3"):
        getattr(large, name).weight.copy_(getattr(small, name).weight)
    _copy_conv_bn(small.deconv_in, large.deconv_in)
    for s_block, l_block in zip(small.deconvs, large.deconvs):
        _copy_conv_bn(s_block, l_block)
    return large
