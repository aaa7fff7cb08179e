"""Unit tests of the shape-code belief in models/scene_beliefs.py (fuse_shape and update)."""

import numpy as np
import pytest
from scipy.stats import chi2

from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    Detection,
    ObjectBelief,
    SensorModel,
    belief_summary,
    detection_from_cluster,
    empty_scene,
    fuse_shape,
    update,
)
from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    look_at,
    render_boxes,
    segment_frame,
)

NAMES = ("cup", "box", "ball")
INTR = CameraIntrinsics.from_fov(160, 120, np.deg2rad(60.0))
SENSOR = SensorModel(INTR)
T_CAM = look_at([0.0, -0.6, 0.5], [0.0, 0.0, 0.0])
TRUTH = np.array([[0.15, 0.0, 0.03], [-0.15, 0.05, 0.03], [0.0, 0.2, 0.03]])
EMPTY = np.zeros(0)


def _grid_posterior(obs, temperature, prior_precision=1.0):
    """Mean and precision of prior * prod (q_i / prior)**t in one dimension, on a grid."""
    s = np.linspace(-8.0, 8.0, 160001)
    log_prior = -0.5 * prior_precision * s ** 2
    log_post = log_prior.copy()
    for m, v in obs:
        log_q = -0.5 * (s - m) ** 2 / v
        log_post += temperature * (log_q - log_prior)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean = float(w @ s)
    return mean, 1.0 / float(w @ (s - mean) ** 2)


def test_fusion_matches_tempered_product_computed_on_a_grid():
    cfg = BeliefConfig(shape_temperature=0.5, shape_gate=1.0 - 1e-12)
    views = [(0.8, 0.05), (0.6, 0.1), (1.1, 0.3), (0.9, 0.02)]
    mean, prec = EMPTY, EMPTY
    for m, v in views:
        mean, prec, restarted = fuse_shape(mean, prec, [m], [v], cfg)
        assert not restarted
    want_mean, want_prec = _grid_posterior(views, 0.5)
    assert mean[0] == pytest.approx(want_mean, abs=1e-4)
    assert prec[0] == pytest.approx(want_prec, rel=1e-3)
    # dimensions fuse independently; a view as wide as the prior adds nothing
    mean, prec, _ = fuse_shape([0.3, -0.2], [4.0, 2.0], [0.5, 2.0], [0.25, 1.0], cfg)
    np.testing.assert_allclose(prec, [4.0 + 0.5 * 3.0, 2.0])
    np.testing.assert_allclose(mean, [(4.0 * 0.3 + 0.5 * 0.5 / 0.25) / 5.5,
                                      (2.0 * -0.2 + 0.5 * 2.0) / 2.0])


def test_repeated_views_converge_and_precision_is_capped():
    cfg = BeliefConfig(shape_max_precision=50.0)
    rng = np.random.default_rng(0)
    code = rng.normal(0.0, 0.8, 16)
    var = np.full(16, 0.04)
    mean, prec = EMPTY, EMPTY
    errors = []
    for _ in range(40):
        mean, prec, restarted = fuse_shape(mean, prec, code + rng.normal(0.0, 0.2, 16), var,
                                           cfg)
        assert not restarted
        errors.append(np.linalg.norm(mean - code))
    assert errors[-1] < 0.5 * errors[0] and errors[-1] < 0.35
    assert np.all(prec <= 50.0 + 1e-9) and np.all(prec > 1.0)
    # an empty observation (no crop) leaves the belief as it was
    same_mean, same_prec, restarted = fuse_shape(mean, prec, EMPTY, EMPTY, cfg)
    assert not restarted and np.array_equal(same_mean, mean) and np.array_equal(same_prec, prec)


def test_an_inconsistent_view_restarts_the_belief():
    cfg = BeliefConfig()
    var = np.full(16, 0.03)
    mean, prec = EMPTY, EMPTY
    for _ in range(10):
        mean, prec, _ = fuse_shape(mean, prec, np.full(16, 0.7), var, cfg)
    other = np.full(16, -0.7)
    d2 = float(np.sum((other - mean) ** 2 / (var + 1.0 / prec)))
    assert d2 > chi2.ppf(cfg.shape_gate, 16)
    new_mean, new_prec, restarted = fuse_shape(mean, prec, other, var, cfg)
    fresh_mean, fresh_prec, _ = fuse_shape(EMPTY, EMPTY, other, var, cfg)
    assert restarted
    np.testing.assert_allclose(new_mean, fresh_mean)
    np.testing.assert_allclose(new_prec, fresh_prec)
    assert np.all(new_mean < 0.0)


def _det(position, code=None, var=0.05):
    if code is None:
        return Detection(position, 1e-4 * np.eye(3), np.ones(3))
    return Detection(position, 1e-4 * np.eye(3), np.ones(3), shape_mean=code,
                     shape_var=np.full(len(code), var))


def test_update_carries_shape_codes_through_birth_matching_and_restarts():
    cfg = BeliefConfig()
    a, b = np.array([0.5, -0.5, 1.0]), np.array([-1.0, 1.0, -1.0])
    scene, info = update(empty_scene(NAMES), [_det(TRUTH[0], a), _det(TRUTH[1])], T_CAM,
                         SENSOR, 0.1, cfg)
    first = scene.get(info["born"][0])
    shapeless = scene.get(info["born"][1])
    want, want_prec, _ = fuse_shape(EMPTY, EMPTY, a, np.full(3, 0.05), cfg)
    np.testing.assert_allclose(first.shape_mean, want)
    np.testing.assert_allclose(first.shape_precision, want_prec)
    assert shapeless.shape_mean.size == 0
    assert belief_summary(shapeless, NAMES)["shape_code"] == []
    # matched views fuse; a detection without a code keeps the belief; a shapeless track
    # takes its first code when one comes
    scene, info = update(scene, [_det(TRUTH[0], a + 0.05), _det(TRUTH[1], b)], T_CAM,
                         SENSOR, 0.2, cfg)
    assert not info["born"] and not info["shape_restarted"]
    fused = scene.get(first.id)
    assert np.all(fused.shape_precision > first.shape_precision)
    assert np.all(fused.shape_mean > want)
    np.testing.assert_allclose(scene.get(shapeless.id).shape_mean,
                               fuse_shape(EMPTY, EMPTY, b, np.full(3, 0.05), cfg)[0])
    scene, info = update(scene, [_det(TRUTH[0])], T_CAM, SENSOR, 0.3, cfg)
    np.testing.assert_array_equal(scene.get(first.id).shape_mean, fused.shape_mean)
    # a code far from the belief (another object's detection): the belief restarts
    scene, info = update(scene, [_det(TRUTH[0], -2.0 * a, 0.01)], T_CAM, SENSOR, 0.4, cfg)
    assert info["shape_restarted"] == [first.id]
    assert np.all(np.sign(scene.get(first.id).shape_mean) == np.sign(-a))
    summary = belief_summary(scene.get(first.id), NAMES)
    np.testing.assert_allclose(summary["shape_code"], scene.get(first.id).shape_mean)
    # a detection whose code has another dimension than the track's is an error
    with pytest.raises(ValueError, match="shape code of 2 dimensions"):
        update(scene, [_det(TRUTH[0], [0.1, 0.2])], T_CAM, SENSOR, 0.5, cfg)


def test_moved_object_merges_shape_evidence():
    cfg = BeliefConfig()
    code = np.array([0.4, -0.3, 0.8])
    scene = empty_scene(NAMES)
    colour = np.array([1.0, 0.0, 0.0])
    t = 0.0
    for _ in range(6):
        t += 0.1
        det = Detection(TRUTH[0], 1e-4 * np.eye(3), np.array([0.8, 0.1, 0.1]), colour=colour,
                        shape_mean=code, shape_var=np.full(3, 0.05))
        scene, _ = update(scene, [det], T_CAM, SENSOR, t, cfg)
    (old,) = scene.objects
    relocated, young_views = [], 0
    for _ in range(8):
        t += 0.1
        young_views += 1
        det = Detection(TRUTH[1], 1e-4 * np.eye(3), np.array([0.8, 0.1, 0.1]), colour=colour,
                        shape_mean=code + 0.02, shape_var=np.full(3, 0.05))
        scene, info = update(scene, [det], T_CAM, SENSOR, t, cfg)
        relocated += info["relocated"]
        if relocated:
            break
    assert relocated and relocated[0][0] == old.id
    merged = scene.get(old.id)
    assert np.all(merged.shape_precision > old.shape_precision)
    assert np.all(merged.shape_precision <= cfg.shape_max_precision)
    # the merged belief holds the evidence of every view of both tracks, as if one track had
    # seen them all
    mean, prec = EMPTY, EMPTY
    for view in [code] * 6 + [code + 0.02] * young_views:
        mean, prec, _ = fuse_shape(mean, prec, view, np.full(3, 0.05), cfg)
    np.testing.assert_allclose(merged.shape_mean, mean, atol=1e-9)
    np.testing.assert_allclose(merged.shape_precision, prec, atol=1e-9)


def test_bad_shape_inputs_raise():
    with pytest.raises(ValueError, match="shape_var"):
        Detection(np.zeros(3), np.eye(3), np.ones(3), shape_mean=np.zeros(4))
    with pytest.raises(ValueError, match="positive shape_var"):
        Detection(np.zeros(3), np.eye(3), np.ones(3), shape_mean=np.zeros(2),
                  shape_var=np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match="finite"):
        Detection(np.zeros(3), np.eye(3), np.ones(3), shape_mean=np.array([np.nan, 0.0]),
                  shape_var=np.ones(2))
    with pytest.raises(ValueError, match="shape_precision"):
        ObjectBelief(id="x", category_probs=np.full(3, 1 / 3), mean=np.zeros(3),
                     cov=np.eye(3), extent=np.zeros(3), colour=np.zeros(3), existence=0.5,
                     last_seen=0.0, shape_mean=np.zeros(3), shape_precision=np.zeros(3))
    with pytest.raises(ValueError, match="dimensions"):
        fuse_shape(np.zeros(2), np.ones(2), np.zeros(3), np.ones(3), BeliefConfig())
    with pytest.raises(ValueError, match="shape_temperature"):
        BeliefConfig(shape_temperature=0.0)


def test_clusters_without_a_crop_give_no_shape_observation():
    depth, rgb = render_boxes(INTR, T_CAM, TRUTH[:1], np.full((1, 3), 0.06),
                              np.array([[255, 0, 0]]))
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(),
                        np.random.default_rng(0))
    (cluster,) = res.clusters
    det = detection_from_cluster(cluster, SENSOR, T_CAM, np.ones(3),
                                 shape_mean=np.full(4, np.nan), shape_var=np.full(4, np.nan))
    assert det.shape_mean.size == 0 and det.shape_var.size == 0
    det = detection_from_cluster(cluster, SENSOR, T_CAM, np.ones(3), shape_mean=np.ones(4),
                                 shape_var=np.full(4, 0.1))
    np.testing.assert_array_equal(det.shape_mean, np.ones(4))
