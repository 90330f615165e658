"""Train the two-stream face segmenter and export models/segmenter.onnx.

    .venv-train/bin/python -m training.segmenter.train            # the shipped run
    .venv-train/bin/python -m training.segmenter.train --minutes 2 --finetune-minutes 1 --out /tmp/x.onnx

Stage 1: positives (lfw_parts train + celebamask_mini train, with jitter, rectangles and hands),
Adam with a cosine learning rate over a wall-clock budget; after each epoch (EPOCH_ITERS
iterations) face IoU on lfw_parts validation crops picks the best weights.
Stage 2 (paper §4): fine-tuning from the best weights with half of each batch negative
(face-free pictures, hands on them, crops away from the face), at a tenth of the learning rate.
Writes training/logs/segmentation/{log.csv, log.json, curves.png} and the ONNX model pair
(segmentation_onnx_init.export_segmenter: --out with the fused output, what runs, and its
_streams sibling with all three; each atomically), plus build/segmenter.pt (the weights) and
build/segmenter_{fcn,deconv}.onnx (one-stream graphs, for timing the Table 1 variants).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from training.segmenter.data import (AugmentOptions, SampleMaker, data_dir, hand_occluded, load_hands,
                                        load_negative_images, lfw_parts_source, rectangle_occluded,
                                        training_sources, validation_crops)
from training.segmenter.onnx_init import (export_one_stream_graphs, export_segmenter, freeze_batchnorm,
                                            load_exported_network, output_difference, reproduces, training_source)
from training.segmenter.net import SHAPES, STREAMS, SWITCHES, TwoStreamSegmenter, distillation_loss, segmentation_loss
from training.segmenter.widen import grow

REPO = Path(__file__).resolve().parents[2]
# ---- configuration
SEED = 1234
BATCH = 32
LR = 2e-3
WEIGHT_DECAY = 1e-4
FINETUNE_LR = 2e-4
NEGATIVE_FRACTION = 0.5
EPOCH_ITERS = int(os.environ.get("MASKCAP_EPOCH_ITERS", 100))
THREADS = 1  # other jobs share the 2 cores
HAND_WEIGHT_REACH = 4  # px around hand-covered face pixels that the hand-weighted loss stresses
LOG_DIR = REPO / "training" / "logs" / "segmentation"


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float()


@torch.no_grad()
def evaluate_iou(net, crops, targets, batch: int = 100) -> dict[str, float]:
    """Mean per-crop face IoU of each stream at 128x128 (an empty union counts as 1)."""
    net.eval()
    ious = {k: [] for k in STREAMS}
    for i in range(0, len(crops), batch):
        scores = net(to_tensor(crops[i:i + batch]))
        t = torch.from_numpy(targets[i:i + batch]).bool()
        for k in STREAMS:
            p = scores[k].argmax(1).bool()
            inter = (p & t).sum((1, 2)).float()
            union = (p | t).sum((1, 2)).float()
            ious[k] += torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).tolist()
    net.train()
    return {k: float(np.mean(v)) for k, v in ious.items()}


def hand_weights(covered: np.ndarray, hand_weight: float, reach: int = HAND_WEIGHT_REACH) -> torch.Tensor | None:
    """Per-pixel loss weights: 1 + hand_weight on the face pixels an occluder covers and on
    everything within `reach` px of them (the slivers of face between fingers), else 1; None
    when hand_weight is 0. Aims the loss at the diagnosed errors (training.segmenter.diagnose_hands)."""
    if hand_weight <= 0:
        return None
    cover = torch.from_numpy(covered).float()[:, None]
    near = torch.nn.functional.max_pool2d(cover, 2 * reach + 1, stride=1, padding=reach)[:, 0]
    return 1.0 + hand_weight * near


def train_mode(net, frozen_bn: bool) -> None:
    net.train()
    if frozen_bn:
        freeze_batchnorm(net)


def run_stage(net, maker, rng, minutes, lr, negative_fraction, val, log, stage, best, val_occluded=None,
              frozen_bn=False, hand_weight=0.0, iou_weight=0.0, teacher=None, distill_weight=0.0):
    """Adam with a cosine learning rate over `minutes` of wall time; after every EPOCH_ITERS
    iterations, validation IoU picks the best weights: the fused IoU on clean crops, or with
    `val_occluded` ({kind: (crops, targets)}) the mean over clean and each occluded set. With a
    `teacher` (a frozen network), `distill_weight` x its per-pixel KL divergence joins the loss."""
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    start = time.time()
    budget = minutes * 60.0
    it, losses = 0, []
    train_mode(net, frozen_bn)
    while True:
        elapsed = time.time() - start
        if elapsed >= budget:
            break
        for group in opt.param_groups:  # cosine over the wall-clock budget
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        crops, targets, covered = maker.batch_with_cover(rng, BATCH, negative_fraction)
        x = to_tensor(crops)
        scores = net(x)
        loss = segmentation_loss(scores, torch.from_numpy(targets).long(), hand_weights(covered, hand_weight),
                                 iou_weight)
        if teacher is not None and distill_weight > 0:
            with torch.no_grad():
                taught = teacher(x)
            loss = loss + distill_weight * distillation_loss(scores, taught)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        it += 1
        if it % EPOCH_ITERS == 0 or time.time() - start >= budget:
            iou = evaluate_iou(net, *val)
            train_mode(net, frozen_bn)
            row = {"stage": stage, "epoch": len(log) + 1, "iterations": it, "minutes": round((time.time() - start) / 60, 2),
                   "lr": opt.param_groups[0]["lr"], "train_loss": float(np.mean(losses)),
                   **{f"val_iou_{k}": v for k, v in iou.items()}}
            score = iou["fused"]
            if val_occluded:  # select on clean and occluded validation crops alike
                for kind, crops in val_occluded.items():
                    row[f"val_iou_fused_{kind}"] = evaluate_iou(net, *crops)["fused"]
                train_mode(net, frozen_bn)
                score = float(np.mean([iou["fused"]] + [row[f"val_iou_fused_{k}"] for k in val_occluded]))
                row["selection_score"] = score
            log.append(row)
            losses = []
            print(json.dumps(row), flush=True)
            if score > best["iou"]:
                best.update(iou=score, epoch=row["epoch"], stage=stage,
                            state={k: v.detach().clone() for k, v in net.state_dict().items()})
    return best


def save_logs(log, meta, log_dir: Path = LOG_DIR):
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in log for k in r)))
        writer.writeheader()
        writer.writerows(log)
    (log_dir / "log.json").write_text(json.dumps({"meta": meta, "epochs": log}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    x = [r["epoch"] for r in log]
    ax[0].plot(x, [r["train_loss"] for r in log])
    ax[0].set(xlabel=f"epoch ({EPOCH_ITERS} iterations of {BATCH})", ylabel="train loss", yscale="log")
    for k in STREAMS:
        ax[1].plot(x, [r[f"val_iou_{k}"] for r in log], label=k)
    for kind in ("hand", "rectangle"):
        rows = [r for r in log if f"val_iou_fused_{kind}" in r]
        if rows:
            ax[1].plot([r["epoch"] for r in rows], [r[f"val_iou_fused_{kind}"] for r in rows],
                       label=f"fused, {kind}-occluded")
    ft = [r["epoch"] for r in log if r["stage"] != "main"]
    for a in ax:
        if ft:
            a.axvline(ft[0] - 0.5, color="gray", ls="--", lw=0.8)
    ax[1].set(xlabel="epoch", ylabel="face IoU, lfw_parts val crops", ylim=(0.6, 1.0))
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(log_dir / "curves.png", dpi=80)


def load_exported(path: Path, shape: str, crops: np.ndarray, switches: str = "difference") -> TwoStreamSegmenter:
    """The network of an exported model, grown into `shape` when that is larger, then set to keep
    its pooling switches as `switches` says; exits when the loaded or grown network does not
    reproduce the model's outputs (a change of switches changes the function: fine-tune after)."""
    path = training_source(path)
    net, source_shape = load_exported_network(path)
    difference = output_difference(net, path, crops)
    print(f"loaded {path} as {source_shape!r}: difference to ONNX Runtime {difference}", flush=True)
    if not reproduces(difference):
        raise SystemExit(f"the network loaded from {path} does not reproduce its outputs")
    if source_shape != shape:
        net = grow(net, TwoStreamSegmenter(**SHAPES[shape], switches=net.switches))
        difference = output_difference(net, path, crops)
        print(f"grown into {shape!r}: difference to {path} {difference}", flush=True)
        if not reproduces(difference):
            raise SystemExit(f"growing {path} into {shape!r} changed its outputs")
    if switches != net.switches:
        source_switches, net.switches = net.switches, switches
        print(f"switches {source_switches!r} -> {switches!r}: difference to {path} "
              f"{output_difference(net, path, crops)}", flush=True)
    return net


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=40.0, help="wall-clock budget of stage 1")
    ap.add_argument("--finetune-minutes", type=float, default=10.0, help="budget of the negatives stage")
    ap.add_argument("--out", type=Path, default=REPO / "models" / "segmenter.onnx")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights (build/segmenter.pt) and append to the existing log")
    ap.add_argument("--init-onnx", type=Path, default=None,
                    help="start from the weights of this exported model (e.g. models/segmenter.onnx), BatchNorm "
                         "frozen, and append to the existing log")
    ap.add_argument("--hand-prob", type=float, default=AugmentOptions.p_hand,
                    help="share of positives with a composited hand")
    ap.add_argument("--skin-hand-prob", type=float, default=AugmentOptions.p_skin_hand,
                    help="share of those hands made of the face's own skin (training.segmenter.skin_hands)")
    ap.add_argument("--negative-fraction", type=float, default=NEGATIVE_FRACTION,
                    help="share of each fine-tuning batch without a face")
    ap.add_argument("--hand-weight", type=float, default=0.0,
                    help="extra loss weight on face pixels under an occluder and within "
                         f"{HAND_WEIGHT_REACH} px of them (0: plain cross-entropy)")
    ap.add_argument("--iou-weight", type=float, default=0.0,
                    help="weight of a per-crop soft-IoU loss on the fused stream (0: none)")
    ap.add_argument("--distill-weight", type=float, default=0.0,
                    help="weight of a per-pixel KL divergence to the network of --init-onnx as it was "
                         "loaded (0: none)")
    ap.add_argument("--seed", type=int, default=SEED, help="torch and augmentation seed (a second seed repeats a run)")
    ap.add_argument("--log-dir", type=Path, default=LOG_DIR,
                    help="where the log and curves go (and, when resuming, the log to append to)")
    ap.add_argument("--finetune-lr", type=float, default=FINETUNE_LR, help="peak learning rate of the fine-tuning")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="base",
                    help="network shape (training.segmenter.net.SHAPES); with --init-onnx of a smaller "
                         "network, that network is grown into this shape (training.segmenter.widen)")
    ap.add_argument("--switches", choices=SWITCHES, default="difference",
                    help="how the pooling switches are kept (segmentation_net.pool_with_switches); with "
                         "--init-onnx of a network trained the other way, its function changes: fine-tune")
    ap.add_argument("--landmarks68", action="store_true",
                    help="also train on landmarks68 with build/landmarks68_masks (training.regressor.landmarks68_masks)")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    sources = training_sources(landmarks68=args.landmarks68)
    hands = load_hands()
    maker = SampleMaker(sources, hands, load_negative_images(),
                        AugmentOptions(p_hand=args.hand_prob, p_skin_hand=args.skin_hand_prob))
    val = validation_crops(lfw_parts_source("validation"))
    resuming = bool(args.init or args.init_onnx)
    val_occluded = {"hand": hand_occluded(val, hands), "rectangle": rectangle_occluded(val)} if resuming else None
    print(f"train sources: {[(s.name, len(s)) for s in sources]}, validation crops: {len(val[0])}", flush=True)

    net = TwoStreamSegmenter(**SHAPES[args.shape], switches=args.switches)
    log, best, teacher = [], {"iou": -1.0}, None
    if resuming:
        if args.init:
            net.load_state_dict(torch.load(args.init))
        else:
            net = load_exported(args.init_onnx, args.shape, val[0][:32], args.switches)
        if args.distill_weight > 0:
            if not args.init_onnx:
                raise SystemExit("--distill-weight learns from the network of --init-onnx")
            teacher = load_exported_network(args.init_onnx)[0].eval()
        previous = json.loads((args.log_dir / "log.json").read_text())
        log, main_best = previous["epochs"], previous["meta"]
    else:
        best = run_stage(net, maker, rng, args.minutes, LR, 0.0, val, log, "main", best)
        net.load_state_dict(best["state"])
        main_best = {k: best[k] for k in ("iou", "epoch")}
    if args.finetune_minutes > 0:
        # fine-tuning may trade a little clean IoU for rejecting non-faces; keep its best epoch
        stage = ("finetune_skin_hands" if args.init_onnx else "finetune_hands") if resuming else "finetune"
        if args.hand_weight > 0:
            stage = "finetune_hand_weighted"
        if args.iou_weight > 0:
            stage += "_soft_iou"
        if teacher is not None:
            stage += "_distilled"
        best_ft = run_stage(net, maker, rng, args.finetune_minutes, args.finetune_lr, args.negative_fraction, val,
                            log, stage, {"iou": -1.0}, val_occluded, frozen_bn=bool(args.init_onnx),
                            hand_weight=args.hand_weight, iou_weight=args.iou_weight, teacher=teacher,
                            distill_weight=args.distill_weight)
        net.load_state_dict(best_ft["state"])
        best = best_ft
    net.eval()
    meta = {"seed": args.seed, "batch": BATCH, "lr": LR, "finetune_lr": args.finetune_lr, "hand_weight": args.hand_weight, "iou_weight": args.iou_weight, "weight_decay": WEIGHT_DECAY,
            "distill_weight": args.distill_weight,
            "negative_fraction_finetune": args.negative_fraction, "skin_hand_prob": args.skin_hand_prob, "epoch_iterations": EPOCH_ITERS,
            "minutes": args.minutes, "finetune_minutes": args.finetune_minutes, "threads": args.threads,
            "torch": torch.__version__, "trained_on": [s.name for s in sources],
            "negatives": ["hands/negatives", "backgrounds", "hands/*.png composites"],
            "hand_prob": args.hand_prob, "init": str(args.init or args.init_onnx or "") or None,
            "frozen_batchnorm": bool(args.init_onnx), "shape": args.shape, "switches": net.switches,
            ("previous_run" if resuming else "best_main"): main_best, "shipped": {"stage": best["stage"], "epoch": best["epoch"], "selection_score": best["iou"],
                        **{k: v for k, v in log[best["epoch"] - 1].items() if k.startswith("val_iou")}},
            "data_dir": str(data_dir()),
            "command": (main_best.get("command", []) if resuming else [])
            + ["python -m training.segmenter.train " + " ".join(sys.argv[1:] if argv is None else argv)]}
    save_logs(log, meta, args.log_dir)
    streams = export_segmenter(net, args.out)
    torch.save(net.state_dict(), REPO / "build" / "segmenter.pt")
    export_one_stream_graphs(net)
    print(f"exported {args.out} and {streams} (best: {meta['shipped']})", flush=True)


if __name__ == "__main__":
    main()
