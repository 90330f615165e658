"""The segmenter's training helpers: skin-made hands (training.segmenter.skin_hands) and starting PyTorch
from the shipped ONNX weights (training.segmenter.onnx_init, needs torch: skipped without it)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.segmenter.data import AugmentOptions, Hand, MaskSource, SampleMaker, occlude_for_evaluation
from training.segmenter.skin_hands import composite_skin_hand, skin_texture


def _face_crop(tone_bgr=(90, 130, 190)):
    """A 128x128 crop: grey background, an elliptic face of one skin tone with a little texture."""
    rng = np.random.default_rng(0)
    crop = np.full((128, 128, 3), 60, np.uint8)
    face = np.zeros((128, 128), np.uint8)
    cv2.ellipse(face, (64, 64), (36, 46), 0, 0, 360, 1, -1)
    skin = np.clip(np.array(tone_bgr, np.float32) + rng.normal(0, 4, (128, 128, 3)), 0, 255).astype(np.uint8)
    crop[face > 0] = skin[face > 0]
    return crop, face


def _hand(opacity: int = 255):
    """A 'hand' (opaque by default): a palm and three fingers, wrist at the bottom, as load_hands gives."""
    alpha = np.zeros((60, 40), np.uint8)
    cv2.rectangle(alpha, (5, 25), (35, 59), opacity, -1)
    for x in (7, 17, 27):
        cv2.rectangle(alpha, (x, 2), (x + 6, 25), opacity, -1)
    bgr = np.full((60, 40, 3), (200, 210, 230), np.uint8)
    return Hand(np.dstack([bgr, alpha]))


def test_a_skin_hand_only_removes_face_from_the_target():
    crop, face = _face_crop()
    for seed in range(5):
        _, target = composite_skin_hand(crop, face, _hand(), np.random.default_rng(seed))
        assert not np.any(target > face)
        assert target.sum() < face.sum()


def test_a_skin_hand_changes_the_picture_only_where_the_target_lost_face_or_outside_the_face():
    crop, face = _face_crop()
    image, target = composite_skin_hand(crop, face, _hand(), np.random.default_rng(1))
    changed = np.abs(image.astype(int) - crop.astype(int)).sum(2) > 30
    still_face = target.astype(bool)
    # strongly changed pixels that are still face can only be the soft edge of the hand
    edge = cv2.dilate((face.astype(bool) & ~still_face).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert not np.any(changed & still_face & ~edge)


@pytest.mark.parametrize("tone", [(60, 90, 140), (90, 130, 190), (150, 180, 220)])
def test_a_skin_hand_takes_the_skin_tone_of_the_face_it_covers(tone):
    crop, face = _face_crop(tone)
    hand_lab, face_lab = [], cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)[face > 0].astype(float).mean(0)
    for seed in range(6):
        image, target = composite_skin_hand(crop, face, _hand(), np.random.default_rng(seed))
        covered = (face > 0) & (target == 0)
        covered = cv2.erode(covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        hand_lab.append(cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[covered].astype(float).mean(0))
    difference = np.abs(np.mean(hand_lab, 0) - face_lab)
    assert difference[0] < 20 and difference[1] < 6 and difference[2] < 6


def test_skin_texture_needs_enough_face_pixels():
    crop, face = _face_crop()
    assert skin_texture(crop, np.zeros_like(face), np.random.default_rng(0)) is None
    mean, texture = skin_texture(crop, face, np.random.default_rng(0))
    assert mean.shape == (3,) and texture.shape == face.shape


def test_weights_loaded_from_an_export_reproduce_its_outputs(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    pytest.importorskip("onnx", reason="reading ONNX initializers needs the onnx package (.venv-train)")
    from training.segmenter.net import ExportWrapper, TwoStreamSegmenter, export_onnx
    from training.segmenter.onnx_init import load_onnx_weights, output_difference
    torch.manual_seed(0)
    net = TwoStreamSegmenter()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so folding matters
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    path = tmp_path / "segmenter.onnx"
    export_onnx(ExportWrapper(net), path, ("fused", "fcn", "deconv"))
    loaded = load_onnx_weights(TwoStreamSegmenter(), path)
    crops = np.random.default_rng(0).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    difference = output_difference(loaded, path, crops)
    assert difference["mean"] < 1e-4 and difference["threshold_flips"] < 1e-3


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    pytest.importorskip("onnx", reason="reading ONNX initializers needs the onnx package (.venv-train)")
    from training.segmenter.net import ExportWrapper, TwoStreamSegmenter, export_onnx
    from training.segmenter.onnx_init import load_onnx_weights
    path = tmp_path / "wide.onnx"
    export_onnx(ExportWrapper(TwoStreamSegmenter(fc6_width=64)), path, ("fused", "fcn", "deconv"))
    with pytest.raises(ValueError):
        load_onnx_weights(TwoStreamSegmenter(), path)


def _face_frame():
    """A 320x240 frame with the elliptic face of `_face_crop` scaled 1.5x into its middle."""
    crop, face = _face_crop()
    frame = np.full((240, 320, 3), 60, np.uint8)
    mask = np.zeros((240, 320), np.uint8)
    frame[24:216, 64:256] = cv2.resize(crop, (192, 192), interpolation=cv2.INTER_LINEAR)
    mask[24:216, 64:256] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_NEAREST)
    return frame, mask


def test_evaluation_hands_take_from_the_face_only_what_they_cover():
    frame, face = _face_frame()
    opaque = [occlude_for_evaluation(frame, face, seed, [_hand()], "hand")[1] for seed in range(4)]
    faint = [occlude_for_evaluation(frame, face, seed, [_hand(opacity=100)], "hand") for seed in range(4)]
    assert all(np.any(image != frame) for image, _ in faint)       # a faint hand shows in the picture
    assert all(visible.sum() < 0.9 * face.sum() for visible in opaque)
    # but leaves the face: at most a thin line where it crosses the face's outline
    assert all(visible.sum() > 0.98 * face.sum() and not np.any(visible > face) for _, visible in faint)


def _maker(p_hand: float) -> SampleMaker:
    crop, face = _face_crop()
    source = MaskSource("synthetic", [0], lambda _: (crop, face))
    return SampleMaker([source], [_hand()], [np.full((128, 128, 3), 90, np.uint8)],
                       AugmentOptions(p_hand=p_hand, p_rectangles=0.0, p_photometric=0.0))


def test_covered_marks_the_face_pixels_hands_took_away():
    crops, targets, covered = _maker(p_hand=1.0).batch_with_cover(np.random.default_rng(0), 6)
    assert np.all(covered.sum((1, 2)) > 0)
    assert not np.any(covered & targets)
    # covered and still visible face together make the un-occluded face (rotated and shifted)
    face_area = _face_crop()[1].sum()
    assert np.all((covered | targets).sum((1, 2)) > 0.5 * face_area)


def test_nothing_is_covered_without_occluders_or_on_negatives():
    _, _, covered = _maker(p_hand=0.0).batch_with_cover(np.random.default_rng(0), 4)
    assert not covered.any()
    _, targets, covered = _maker(p_hand=1.0).batch_with_cover(np.random.default_rng(0), 4, negative_fraction=1.0)
    assert not covered.any()


def test_hand_weights_stress_covered_pixels_and_their_surroundings():
    pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.train import HAND_WEIGHT_REACH, hand_weights
    covered = np.zeros((1, 32, 32), np.uint8)
    covered[0, 10:14, 10:14] = 1
    weights = hand_weights(covered, 3.0).numpy()[0]
    assert weights[12, 12] == 4.0 and weights[12, 13 + HAND_WEIGHT_REACH] == 4.0
    assert weights[12, 14 + HAND_WEIGHT_REACH] == 1.0 and weights[30, 30] == 1.0
    assert hand_weights(covered, 0.0) is None


def test_the_soft_iou_loss_is_zero_for_a_right_mask_one_for_a_wrong_one_and_weighs_crops_alike():
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import soft_jaccard_loss

    def scores(face):  # confident two-class scores for a 0/1 face map
        f = torch.as_tensor(face, dtype=torch.float32)
        return torch.stack([-20 * f + 10, 20 * f - 10], dim=1)
    big, small = torch.zeros(1, 32, 32, dtype=torch.long), torch.zeros(1, 32, 32, dtype=torch.long)
    big[0, 4:28, 4:28] = 1
    small[0, 14:18, 14:18] = 1
    assert soft_jaccard_loss(scores(big), big).item() < 1e-3
    assert soft_jaccard_loss(scores(1 - big), big).item() > 0.99
    assert soft_jaccard_loss(scores(torch.zeros_like(big)), torch.zeros_like(big)).item() < 1e-3
    # missing a small face costs as much as missing a large one (cross-entropy would weigh it by area)
    miss_small = soft_jaccard_loss(scores(torch.zeros_like(small)), small).item()
    miss_big = soft_jaccard_loss(scores(torch.zeros_like(big)), big).item()
    assert miss_small > 0.9 and miss_big > 0.99


def _random_batchnorm(net, torch):
    """BatchNorm statistics that are not the identity, so that folding them matters."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    return net.eval()


def test_the_export_folds_the_heads_without_changing_the_probabilities():
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import ExportWrapper, TwoStreamSegmenter
    torch.manual_seed(1)
    net = _random_batchnorm(TwoStreamSegmenter(), torch)
    with torch.no_grad():
        net.fuse.weight.normal_()  # a fusion that is not the mean of the streams
        net.fuse.bias.normal_()
        x = torch.rand(2, 3, 128, 128) * 255
        scores = net(x)
        folded = ExportWrapper(net)(x)
        one_stream = ExportWrapper(net, ("deconv",))(x)
    for name, probability in zip(("fused", "fcn", "deconv"), folded):
        two_class = torch.softmax(scores[name], 1)[:, 1:2]
        assert torch.allclose(probability, two_class, atol=1e-5), name
    assert torch.allclose(one_stream[0], folded[2], atol=1e-6)


def test_a_grown_network_computes_what_the_small_one_did():
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import SHAPES, ExportWrapper, TwoStreamSegmenter
    from training.segmenter.widen import grow
    torch.manual_seed(2)
    small = _random_batchnorm(TwoStreamSegmenter(**SHAPES["base"], switches="tie_break"), torch)
    large = grow(small, TwoStreamSegmenter(**SHAPES["deep"], switches="tie_break")).eval()
    assert sum(p.numel() for p in large.parameters()) > 2 * sum(p.numel() for p in small.parameters())
    x = torch.rand(2, 3, 128, 128) * 255
    with torch.no_grad():
        for a, b in zip(ExportWrapper(small)(x), ExportWrapper(large)(x)):
            assert torch.allclose(a, b, atol=1e-5)
        with pytest.raises(ValueError):
            grow(large, TwoStreamSegmenter(**SHAPES["base"], switches="tie_break"))


def test_switches_send_each_value_back_to_where_its_windows_maximum_was():
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import max_unpool2x, pool_with_switches
    z = torch.tensor([[[[1.0, 5.0, -1.0, -3.0],   # before the ReLU: the top-right window is all
                        [2.0, 3.0, -2.0, -0.5],   # zero after it
                        [0.5, 0.2, 7.0, 7.5],
                        [0.1, 0.9, 6.0, 1.0]]]])
    for mode in ("difference", "tie_break"):
        pooled, switches = pool_with_switches(z, mode)
        assert pooled.flatten().tolist() == pytest.approx([5.0, 0.0, 0.9, 7.5], abs=1e-4)
        back = max_unpool2x(torch.full_like(pooled, 2.0), switches, mode)[0, 0]
        assert back[0, 1] == back[3, 1] == back[2, 3] == 2 and int((back > 0).sum()) == 4
        # the all-zero window: the largest value before the ReLU, or the tie-break's top-left
        assert back[1, 3] == 2 if mode == "difference" else back[0, 2] == 2


def test_difference_switches_spread_only_exact_ties():
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import max_unpool2x, pool_with_switches
    z = torch.tensor([[[[3.0, 3.0], [3.0, 3.0 - 1e-4]]]])
    back = max_unpool2x(torch.ones(1, 1, 1, 1), pool_with_switches(z)[1])[0, 0]
    assert back.flatten().tolist() == [1.0, 1.0, 1.0, 0.0]


def test_an_export_with_difference_switches_stays_in_blocked_ops_and_computes_what_torch_does(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    onnx = pytest.importorskip("onnx", reason="reading ONNX graphs needs the onnx package (.venv-train)")
    from training.segmenter.net import ExportWrapper, TwoStreamSegmenter, export_onnx
    from training.segmenter.onnx_init import load_onnx_weights, output_difference, switches_of
    torch.manual_seed(3)
    crops = np.random.default_rng(0).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    for mode in ("difference", "tie_break"):
        net = _random_batchnorm(TwoStreamSegmenter(switches=mode), torch)
        path = tmp_path / f"{mode}.onnx"
        export_onnx(ExportWrapper(net), path, ("fused", "fcn", "deconv"))
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert ("Equal" in ops) == ("Cast" in ops) == (mode == "tie_break")
        assert switches_of(path) == mode
        assert output_difference(net, path, crops)["mean"] < 1e-5
        loaded = load_onnx_weights(TwoStreamSegmenter(switches=switches_of(path)), path)
        assert output_difference(loaded, path, crops)["threshold_flips"] == 0.0


def test_networks_that_keep_their_switches_differently_are_not_grown_into_each_other():
    pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import SHAPES, TwoStreamSegmenter
    from training.segmenter.widen import grow
    with pytest.raises(ValueError, match="switches"):
        grow(TwoStreamSegmenter(switches="tie_break"), TwoStreamSegmenter(**SHAPES["deep"]))
    with pytest.raises(ValueError, match="switches"):
        TwoStreamSegmenter(switches="argmax")


def test_a_run_started_from_an_export_grows_it_then_moves_it_to_the_switches_asked_for(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    pytest.importorskip("onnx", reason="reading ONNX initializers needs the onnx package (.venv-train)")
    from training.segmenter.net import SHAPES, ExportWrapper, TwoStreamSegmenter, export_onnx
    from training.segmenter.train import load_exported
    torch.manual_seed(4)
    path = tmp_path / "base.onnx"
    export_onnx(ExportWrapper(_random_batchnorm(TwoStreamSegmenter(switches="tie_break"), torch)), path,
                ("fused", "fcn", "deconv"))
    crops = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    net = load_exported(path, "deep", crops, "difference")
    assert net.switches == "difference"
    assert net.stages[4][1][0].weight.shape[0] == SHAPES["deep"]["widths"][4]


def test_the_run_time_export_has_the_fused_output_alone_and_gives_what_its_streams_sibling_does(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    onnx = pytest.importorskip("onnx", reason="reading ONNX graphs needs the onnx package (.venv-train)")
    import onnxruntime as ort
    from training.segmenter.net import TwoStreamSegmenter
    from training.segmenter.onnx_init import export_segmenter, load_exported_network, output_difference, reproduces
    torch.manual_seed(5)
    net = _random_batchnorm(TwoStreamSegmenter(), torch).eval()
    out = tmp_path / "segmenter.onnx"
    streams = export_segmenter(net, out)
    assert streams == tmp_path / "segmenter_streams.onnx"
    run_time, every = onnx.load(str(out)).graph, onnx.load(str(streams)).graph
    assert [o.name for o in run_time.output] == ["fused"]
    assert [o.name for o in every.output] == ["fused", "fcn", "deconv"]
    # the one-channel score conv runs as a depthwise conv summed over channels, with no slicing
    assert any(n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
               and "head_dw" in n.input for n in run_time.node)
    assert not any(n.op_type == "Slice" for n in run_time.node)
    crops = np.random.default_rng(1).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
    fused = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(["fused"], {"crop_bgr": x})[0]
             for p in (out, streams)]
    assert np.abs(fused[0] - fused[1]).max() < 1e-4 and np.abs(fused[0] - fused[1]).mean() < 1e-6
    # weights load from the sibling, which alone keeps each stream's head
    loaded, shape = load_exported_network(out)
    # (float rounding only: PyTorch and ONNX Runtime sum in other orders, so on some CPUs a pixel of
    # this random network's map sits close enough to 0.5 to change side; seen on an AVX2-only EPYC)
    assert shape == "base" and reproduces(output_difference(loaded, streams, crops))
    # ... stored in float16, cast to float32 as the graph starts: within float16 rounding of the network
    stored = {i.name: i.data_type for i in every.initializer}
    assert sum(t == onnx.TensorProto.FLOAT16 for t in stored.values()) >= 20
    assert all(n.op_type == "Cast" for n in every.node[:20])
    assert output_difference(net, streams, crops)["mean"] < 1e-3


def test_a_run_time_export_without_its_streams_sibling_is_refused_for_training(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    pytest.importorskip("onnx", reason="reading ONNX graphs needs the onnx package (.venv-train)")
    from training.segmenter.net import TwoStreamSegmenter
    from training.segmenter.onnx_init import export_segmenter, load_exported_network, onnx_initializers
    out = tmp_path / "segmenter.onnx"
    export_segmenter(TwoStreamSegmenter().eval(), out)
    (tmp_path / "segmenter_streams.onnx").unlink()
    with pytest.raises(ValueError, match="segmenter_streams.onnx"):
        load_exported_network(out)
    with pytest.raises(ValueError, match="streams sibling"):
        onnx_initializers(out)


def test_distillation_loss_is_zero_for_the_teachers_own_scores_and_grows_with_disagreement():
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    from training.segmenter.net import distillation_loss
    torch.manual_seed(7)
    teacher = {k: torch.randn(2, 2, 8, 8) for k in ("fcn", "deconv", "fused")}
    assert float(distillation_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    near = {k: v + 0.1 * torch.randn_like(v) for k, v in teacher.items()}
    far = {k: -v for k, v in teacher.items()}
    assert 0 < float(distillation_loss(near, teacher)) < float(distillation_loss(far, teacher))


def test_quantisation_makes_the_dense_convolutions_int8_and_leaves_switches_first_and_narrow_convs_float(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need PyTorch (.venv-train)")
    onnx = pytest.importorskip("onnx", reason="reading ONNX graphs needs the onnx package (.venv-train)")
    from training.segmenter.net import TwoStreamSegmenter
    from training.segmenter.onnx_init import export_segmenter
    from training.segmenter.quantize import fused_probabilities, quantisable_convs, quantise
    torch.manual_seed(5)
    out = tmp_path / "segmenter.onnx"
    export_segmenter(_random_batchnorm(TwoStreamSegmenter(), torch).eval(), out)
    graph = onnx.load(str(out)).graph
    names = quantisable_convs(onnx.load(str(out)))
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    depthwise = {k for k, n in convs.items() if any(a.name == "group" and a.i > 1 for a in n.attribute)}
    assert names and not depthwise & set(names)
    assert set(convs) - depthwise - set(names) == {"/stages.0.0.0/Conv", "/stages.1.0.0/Conv", "/score5/Conv",
                                                   "/score4/Conv", "/score3/Conv", "/deconvs.3/deconvs.3.0/Conv"}
    crops = np.random.default_rng(2).integers(0, 256, (6, 128, 128, 3), dtype=np.uint8)
    int8 = tmp_path / "int8.onnx"
    assert quantise(out, int8, crops) == names
    quantised = onnx.load(str(int8)).graph
    dequantised = {n.output[0] for n in quantised.node if n.op_type == "DequantizeLinear"}
    assert sum(n.input[1] in dequantised for n in quantised.node if n.op_type == "Conv") == len(names)
    a, b = fused_probabilities(out, crops), fused_probabilities(int8, crops)
    assert np.abs(a - b).mean() < 0.05


def test_quantisation_is_refused_when_it_costs_iou_or_flips_pixels():
    from training.segmenter.quantize import MAX_FLIPS, MAX_IOU_LOSS, Agreement
    assert Agreement(0.90, 0.90 - MAX_IOU_LOSS / 2, 0.01, MAX_FLIPS / 2).acceptable()
    assert not Agreement(0.90, 0.90 - 2 * MAX_IOU_LOSS, 0.01, MAX_FLIPS / 2).acceptable()
    assert not Agreement(0.90, 0.90, 0.01, 2 * MAX_FLIPS).acceptable()
