"""Unit tests of models/scene_beliefs.py: fusion, association, permanence, removal, moves."""

from dataclasses import replace

import numpy as np
import pytest

from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    Detection,
    ObjectBelief,
    SceneBeliefs,
    SensorModel,
    belief_summary,
    carried,
    categorical_entropy,
    detection_from_cluster,
    empty_scene,
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
T_AWAY = look_at([0.0, -0.6, 0.5], [0.0, -2.0, 0.5])
TRUTH = np.array([[0.15, 0.0, 0.03], [-0.15, 0.05, 0.03], [0.0, 0.2, 0.03]])
CATS = np.array([0, 1, 2])


def _observe(rng, positions, cats, t_cam=T_CAM, drop=()):
    """Simulate the detector: noisy positions and sampled labels from the sensor model."""
    dets = []
    covs = SENSOR.position_covariance(t_cam, positions)
    acc = SENSOR.class_accuracy(t_cam, positions, len(NAMES))
    conf = SensorModel.confusion(acc, len(NAMES))
    for i, (p, c) in enumerate(zip(positions, cats)):
        if i in drop:
            continue
        z = rng.multivariate_normal(p, covs[i])
        y = rng.choice(len(NAMES), p=conf[i, c])
        dets.append(Detection(position=z, position_cov=covs[i],
                              category_likelihood=conf[i, :, y], colour=np.eye(3)[c]))
    return dets


def _run(rng, frames, positions=TRUTH, cats=CATS, config=None, t_cam=T_CAM,
         scene=None, drop=(), start=0.0, shuffle=False):
    scene = scene or empty_scene(NAMES)
    config = config or BeliefConfig()
    info = None
    for f in range(frames):
        dets = _observe(rng, positions, cats, t_cam, drop)
        if shuffle:
            dets = [dets[i] for i in rng.permutation(len(dets))]
        scene, info = update(scene, dets, t_cam, SENSOR, start + 0.1 * (f + 1), config)
    return scene, info


def _by_position(scene, p):
    return min(scene.objects, key=lambda o: np.linalg.norm(o.mean - p))


def test_kalman_update_matches_information_form():
    prior_cov = np.diag([0.01, 0.02, 0.03])
    obj = ObjectBelief(id="a", category_probs=np.full(3, 1 / 3), mean=np.zeros(3),
                       cov=prior_cov, extent=np.zeros(3), colour=np.full(3, np.nan),
                       existence=0.9, last_seen=0.0)
    scene = SceneBeliefs(objects=(obj,), category_names=NAMES, stamp=1.0, next_id=1)
    r = np.array([[0.004, 0.001, 0.0], [0.001, 0.005, 0.0], [0.0, 0.0, 0.006]])
    z = np.array([0.05, -0.03, 0.02])
    det = Detection(position=z, position_cov=r, category_likelihood=np.ones(3))
    cfg = BeliefConfig(q_in_view=0.0, q_out_of_view=0.0)
    new, info = update(scene, [det], T_AWAY, SENSOR, 1.0, cfg)
    precision = np.linalg.inv(prior_cov) + np.linalg.inv(r)
    cov = np.linalg.inv(precision)
    mean = cov @ (np.linalg.inv(r) @ z)
    assert info["matched"] == [("a", 0)]
    np.testing.assert_allclose(new.objects[0].mean, mean, atol=1e-12)
    np.testing.assert_allclose(new.objects[0].cov, cov, atol=1e-12)


def test_category_fusion_is_bayes_rule():
    cfg = BeliefConfig(category_floor=0.0)
    cov = 1e-4 * np.eye(3)
    l1, l2 = np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.1, 0.4])
    scene, _ = update(empty_scene(NAMES), [Detection(np.zeros(3), cov, l1)], T_AWAY, SENSOR,
                      0.1, cfg)
    scene, _ = update(scene, [Detection(np.zeros(3), cov, l2)], T_AWAY, SENSOR, 0.2, cfg)
    expected = l1 * l2 / np.sum(l1 * l2)
    np.testing.assert_allclose(scene.objects[0].category_probs, expected, atol=1e-12)


def test_repeated_views_converge_with_stable_ids():
    rng = np.random.default_rng(0)
    scene, info = _run(rng, 1)
    ids = {o.id for o in scene.objects}
    first_cov = {o.id: np.trace(o.cov) for o in scene.objects}
    scene, info = _run(rng, 25, scene=scene, start=0.1, shuffle=True)
    assert {o.id for o in scene.objects} == ids and len(ids) == 3
    assert not info["born"] and not info["removed"]
    for p, c in zip(TRUTH, CATS):
        obj = _by_position(scene, p)
        assert np.linalg.norm(obj.mean - p) < 0.01
        assert np.argmax(obj.category_probs) == c
        assert obj.category_probs.sum() == pytest.approx(1.0)
        assert np.trace(obj.cov) < 0.2 * first_cov[obj.id]
        assert obj.existence > 0.99 and obj.in_view


def test_association_of_two_close_objects_follows_identity():
    rng = np.random.default_rng(1)
    pos = np.array([[0.0, 0.0, 0.03], [0.06, 0.0, 0.03]])
    scene, _ = _run(rng, 3, positions=pos, cats=np.array([0, 1]))
    owner = {o.id: int(np.argmin(np.linalg.norm(pos - o.mean, axis=1))) for o in scene.objects}
    assert sorted(owner.values()) == [0, 1]
    scene, info = _run(rng, 10, positions=pos, cats=np.array([0, 1]), scene=scene, start=0.3,
                       shuffle=True)
    assert {o.id for o in scene.objects} == set(owner)
    for obj in scene.objects:
        assert np.linalg.norm(obj.mean - pos[owner[obj.id]]) < 0.01


def test_object_permanence_out_of_view():
    rng = np.random.default_rng(2)
    scene, _ = _run(rng, 5)
    before = {o.id: o for o in scene.objects}
    scene, info = update(scene, [], T_AWAY, SENSOR, scene.stamp + 10.0, BeliefConfig())
    assert not info["removed"] and not info["missed"]
    assert len(scene.objects) == 3
    for obj in scene.objects:
        old = before[obj.id]
        assert not obj.in_view
        assert obj.existence == old.existence
        np.testing.assert_array_equal(obj.mean, old.mean)
        # covariance grows by q_out_of_view * dt on the diagonal
        np.testing.assert_allclose(obj.cov, old.cov + 2e-5 * 10.0 * np.eye(3), atol=1e-12)


def test_object_in_view_but_unseen_is_removed_unless_occluded():
    rng = np.random.default_rng(3)
    scene, _ = _run(rng, 5)
    gone = _by_position(scene, TRUTH[2]).id
    # occluded: a depth image with a near surface in front of everything keeps the belief
    near = np.full((INTR.height, INTR.width), 0.2, dtype=np.float32)
    occ, info = update(scene, [], T_CAM, SENSOR, scene.stamp + 0.1, BeliefConfig(), depth=near)
    assert not info["missed"] and len(occ.objects) == 3
    removed, n_frames = [], 0
    while not removed:
        dets = _observe(rng, TRUTH, CATS, drop=(2,))
        scene, info = update(scene, dets, T_CAM, SENSOR, scene.stamp + 0.1, BeliefConfig())
        removed, n_frames = info["removed"], n_frames + 1
        assert n_frames < 10
    assert removed == [gone] and n_frames >= 2
    assert {o.id for o in scene.objects} == {o.id for o in occ.objects} - {gone}


def test_spurious_detection_dies_quickly():
    rng = np.random.default_rng(4)
    scene, _ = _run(rng, 3)
    ghost = Detection(np.array([0.1, 0.3, 0.1]), 1e-4 * np.eye(3), np.ones(3))
    dets = _observe(rng, TRUTH, CATS) + [ghost]
    scene, info = update(scene, dets, T_CAM, SENSOR, 1.0, BeliefConfig())
    (ghost_id,) = info["born"]
    for f in range(2):
        scene, info = update(scene, _observe(rng, TRUTH, CATS), T_CAM, SENSOR, 1.1 + 0.1 * f,
                             BeliefConfig())
    assert scene.get(ghost_id) is None and len(scene.objects) == 3


def test_moved_object_keeps_its_identity():
    rng = np.random.default_rng(5)
    scene, _ = _run(rng, 15)  # long enough for reliable categories
    mover = _by_position(scene, TRUTH[1]).id
    moved = TRUTH.copy()
    moved[1] = [-0.05, -0.15, 0.03]
    scene, info = update(scene, _observe(rng, moved, CATS), T_CAM, SENSOR, 2.0, BeliefConfig())
    (young,) = info["born"]  # beyond the gate: a new track first
    assert info["missed"] == [mover] and not info["relocated"]
    frames = 1
    while not info["relocated"]:
        scene, info = update(scene, _observe(rng, moved, CATS), T_CAM, SENSOR,
                             2.0 + 0.1 * frames, BeliefConfig())
        frames += 1
        assert frames < 6
    assert info["relocated"] == [(mover, young)] and not info["removed"]
    assert young not in {o.id for o in scene.objects}
    assert len(scene.objects) == 3
    obj = scene.get(mover)
    assert np.linalg.norm(obj.mean - moved[1]) < 0.02
    # a single miss in view (detector dropout) is not a move: nothing merges
    scene, info = update(scene, _observe(rng, moved, CATS, drop=(0,)), T_CAM, SENSOR, 3.0,
                         BeliefConfig())
    assert not info["relocated"] and len(scene.objects) == 3
    # without relocation: the new track stays and the old one dies at its empty place
    scene2, _ = _run(rng, 5)
    cfg = BeliefConfig(relocate=False)
    scene2, _ = _run(rng, 8, positions=moved, config=cfg, scene=scene2, start=1.0)
    assert len(scene2.objects) == 3 and scene2.get(mover) is None
    assert np.linalg.norm(_by_position(scene2, moved[1]).mean - moved[1]) < 0.01


def test_same_category_objects_seen_together_never_merge():
    rng = np.random.default_rng(7)
    cats = np.array([0, 0, 0])
    scene, _ = _run(rng, 5, cats=cats)
    ids = {o.id for o in scene.objects}
    scene, _ = _run(rng, 10, cats=cats, scene=scene, start=0.5, drop=(1,))
    assert len(scene.objects) == 2 and {o.id for o in scene.objects} < ids


def test_bad_input_errors():
    scene = empty_scene(NAMES, stamp=1.0)
    det = Detection(np.zeros(3), 1e-4 * np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="category_likelihood has shape"):
        update(scene, [det], T_CAM, SENSOR, 2.0, BeliefConfig())
    with pytest.raises(ValueError, match="earlier"):
        update(scene, [], T_CAM, SENSOR, 0.5, BeliefConfig())
    with pytest.raises(ValueError, match="positive definite"):
        Detection(np.zeros(3), -np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        Detection(np.array([np.nan, 0, 0]), np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="distribution"):
        ObjectBelief(id="x", category_probs=np.array([0.5, 0.6]), mean=np.zeros(3),
                     cov=np.eye(3), extent=np.zeros(3), colour=np.zeros(3), existence=0.5,
                     last_seen=0.0)


def test_sensor_model_properties():
    pts = np.array([[0.0, 0.0, 0.0], [0.0, -1.0, 0.5], [0.0, 0.6, -0.5], [5.0, 5.0, 0.0]])
    pd = SENSOR.detection_probability(T_CAM, pts)
    np.testing.assert_allclose(pd, [0.9, 0.0, 0.9, 0.0])  # behind the camera / outside image
    near, far = np.array([[0.0, -0.3, 0.25]]), np.array([[0.0, 0.6, -0.5]])
    c_near = SENSOR.position_covariance(T_CAM, near)[0]
    c_far = SENSOR.position_covariance(T_CAM, far)[0]
    assert np.trace(c_far) > np.trace(c_near)
    ray = (far[0] - T_CAM[:3, 3]) / np.linalg.norm(far[0] - T_CAM[:3, 3])
    lateral = np.cross(ray, [1.0, 0.0, 0.0])
    assert ray @ c_far @ ray > lateral @ c_far @ lateral / (lateral @ lateral)  # depth noisier
    acc = SENSOR.class_accuracy(T_CAM, np.vstack([near, far]), 3)
    assert 1 / 3 < acc[1] < acc[0] <= 0.9
    conf = SensorModel.confusion(acc, 3)
    np.testing.assert_allclose(conf.sum(axis=2), 1.0)
    assert categorical_entropy(np.full(4, 0.25)) == pytest.approx(np.log(4))


def test_segmentation_to_beliefs_end_to_end():
    centres = TRUTH + [0.0, 0.0, 0.0]
    sizes = np.full((3, 3), 0.06)
    depth, rgb = render_boxes(INTR, T_CAM, centres, sizes, 255 * np.eye(3, dtype=int))
    scene = empty_scene(NAMES)
    rng = np.random.default_rng(6)
    for f in range(3):
        res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), rng)
        dets = [detection_from_cluster(c, SENSOR, T_CAM, np.ones(3)) for c in res.clusters]
        scene, info = update(scene, dets, T_CAM, SENSOR, 0.1 * (f + 1), BeliefConfig(),
                             depth=depth)
    assert len(scene.objects) == 3 and not info["born"]
    for p in TRUTH:
        obj = _by_position(scene, p)
        assert np.linalg.norm(obj.mean - p) < 0.01
        np.testing.assert_allclose(obj.extent, 0.06, atol=0.012)
    cluster = res.clusters[0]
    det = detection_from_cluster(cluster, SENSOR, T_CAM, np.ones(3))
    across = np.hypot(*cluster.extent[:2]) / np.sqrt(2.0)  # however the box is turned
    expected = SENSOR.position_covariance(T_CAM, cluster.center)[0] \
        + np.diag((0.15 * np.array([across, across, cluster.extent[2]])) ** 2)
    np.testing.assert_allclose(det.position_cov, expected)
    cut = replace(cluster, truncated=True)
    np.testing.assert_allclose(detection_from_cluster(cut, SENSOR, T_CAM, np.ones(3)).position_cov,
                               expected + 0.03 ** 2 * np.eye(3))
    summary = belief_summary(scene.objects[0], NAMES)
    assert len(summary["covariance"]) == 36 and summary["category_names"] == list(NAMES)
    assert sum(summary["category_probs"]) == pytest.approx(1.0)


def _biased_views(rng, centre, toward, frames, scene, start, extent=0.1):
    """Detections of one cup whose centre lies 3.5 cm toward the camera (its visible side)."""
    t_cam = look_at(centre + np.array([0.0, 0.6 * toward, 0.5]), centre)
    seen = centre + np.array([0.0, 0.035 * toward, 0.0])
    for f in range(frames):
        cov = SENSOR.position_covariance(t_cam, seen[None])[0] \
            + np.diag((0.15 * np.full(3, extent)) ** 2)
        det = Detection(position=rng.multivariate_normal(seen, 1e-6 * np.eye(3)),
                        position_cov=cov, category_likelihood=np.array([0.8, 0.1, 0.1]),
                        extent=np.full(3, extent), colour=np.array([0.9, 0.1, 0.1]))
        scene, info = update(scene, [det], t_cam, SENSOR, start + 0.1 * (f + 1),
                             BeliefConfig())
    return scene, info


def test_views_from_opposite_sides_make_one_track():
    rng = np.random.default_rng(11)
    centre = np.array([0.0, 0.0, 0.05])
    scene, _ = _biased_views(rng, centre, -1.0, 20, empty_scene(NAMES), 0.0)
    (first,) = scene.objects
    scene, info = _biased_views(rng, centre, 1.0, 1, scene, 2.0)
    # the shifted view fails the gate of the confident track, starts a second one, and the
    # two merge at once: one object, the old id
    assert info["born"] and info["merged"] == [(first.id, info["born"][0])]
    born = info["born"][0]  # the retired id stays an alias of the kept track
    scene, info = _biased_views(rng, centre, 1.0, 10, scene, 2.1)
    (obj,) = scene.objects
    assert obj.id == first.id and obj.n_detections == 31
    assert obj.merged == {born} and belief_summary(obj, NAMES)["merged_ids"] == [born]
    assert abs(obj.mean[1] - (centre[1] + 0.035)) < 0.01  # where it was seen last
    # without merging, two tracks of the one cup
    off = BeliefConfig(merge=False)
    scene, _ = _biased_views(rng, centre, -1.0, 20, empty_scene(NAMES), 0.0)
    t_cam = look_at(centre + np.array([0.0, 0.6, 0.5]), centre)
    det = Detection(position=centre + [0.0, 0.035, 0.0], position_cov=1e-4 * np.eye(3),
                    category_likelihood=np.array([0.8, 0.1, 0.1]), extent=np.full(3, 0.1),
                    colour=np.array([0.9, 0.1, 0.1]))
    scene, _ = update(scene, [det], t_cam, SENSOR, 3.0, off)
    assert len(scene.objects) == 2


def test_look_alikes_once_seen_side_by_side_never_merge():
    two = np.array([[0.0, 0.0, 0.05], [0.07, 0.0, 0.05]])
    dets = [Detection(position=p, position_cov=1e-4 * np.eye(3),
                      category_likelihood=np.array([0.8, 0.1, 0.1]), extent=np.full(3, 0.1),
                      colour=np.array([0.9, 0.1, 0.1])) for p in two]
    scene, info = update(empty_scene(NAMES), dets, T_CAM, SENSOR, 0.1, BeliefConfig())
    assert len(scene.objects) == 2 and not info["merged"]
    a, b = scene.objects
    assert a.distinct == {b.id} and b.distinct == {a.id}
    # later frames see one or the other (the other hidden: a depth image nearer than both)
    hidden = np.full((INTR.height, INTR.width), 0.2)
    for f in range(10):
        scene, info = update(scene, [dets[f % 2]], T_CAM, SENSOR, 0.2 + 0.1 * f,
                             BeliefConfig(), depth=hidden)
        assert not info["merged"] and len(scene.objects) == 2
    # the same two detections in a fresh scene but never in one frame: one object
    scene, _ = update(empty_scene(NAMES), dets[:1], T_AWAY, SENSOR, 0.1, BeliefConfig())
    scene, info = update(scene, dets[1:], T_AWAY, SENSOR, 0.2, BeliefConfig())
    assert len(scene.objects) == 1 and info["merged"]


def test_a_boxs_heading_is_kept_up_to_quarter_turns():
    box = np.array([0.09, 0.05, 0.1])
    scene = empty_scene(NAMES)
    for f, (yaw, extent) in enumerate([(0.7, box), (0.7 + np.pi / 2, box[[1, 0, 2]]),
                                       (0.7 - np.pi / 2, box[[1, 0, 2]]), (0.7 + np.pi, box)]):
        det = Detection(position=np.array([0.0, 0.0, 0.05]), position_cov=1e-4 * np.eye(3),
                        category_likelihood=np.ones(3), extent=extent, yaw=yaw)
        scene, _ = update(scene, [det], T_CAM, SENSOR, 0.1 * (f + 1), BeliefConfig())
        (obj,) = scene.objects
        # the same box described from another side: neither the heading nor the size moves
        assert obj.yaw == pytest.approx(0.7) and np.allclose(obj.extent, box)
    q = belief_summary(obj, NAMES)["orientation_xyzw"]
    assert q == pytest.approx([0.0, 0.0, np.sin(0.35), np.cos(0.35)])
    # a turned view pulls the heading by the extent rate
    det = Detection(position=np.array([0.0, 0.0, 0.05]), position_cov=1e-4 * np.eye(3),
                    category_likelihood=np.ones(3), extent=box, yaw=0.8)
    scene, _ = update(scene, [det], T_CAM, SENSOR, 1.0, BeliefConfig())
    assert scene.objects[0].yaw == pytest.approx(0.7 + 0.3 * 0.1)


def test_a_look_alike_beyond_the_relocation_distance_is_another_object():
    rng = np.random.default_rng(5)
    scene, _ = _run(rng, 15)
    mover = _by_position(scene, TRUTH[1]).id
    moved = TRUTH.copy()
    moved[1] = [-0.05, -0.15, 0.03]  # 0.22 m from where it stood
    cfg = BeliefConfig(relocate_max_distance=0.15)
    relocated = []
    for frame in range(8):
        scene, info = update(scene, _observe(rng, moved, CATS), T_CAM, SENSOR,
                             2.0 + 0.1 * frame, cfg)
        relocated += info["relocated"]
    assert not relocated
    young = _by_position(scene, moved[1])
    assert young.id != mover and np.linalg.norm(young.mean - moved[1]) < 0.02
    with pytest.raises(ValueError, match="relocate_max_distance"):
        BeliefConfig(relocate_max_distance=0.0)


def test_a_carried_object_keeps_its_id_from_where_it_was_picked_to_where_it_was_put_down():
    rng = np.random.default_rng(8)
    scene, _ = _run(rng, 15)
    picked = _by_position(scene, TRUTH[1]).id
    cfg = BeliefConfig(relocate_max_distance=0.15)  # put down farther than a relocation
    rest = TRUTH[[0, 2]]
    put = np.array([0.3, 0.35, 0.03])  # 0.56 m from where it stood, in view
    # carried: in view the hand hides it (no detection), the track follows the hand and is
    # neither missed nor removed
    t = scene.stamp
    for k, hand in enumerate(np.linspace(TRUTH[1] + [0, 0, 0.1], put + [0, 0, 0.05], 10)):
        t += 0.1
        scene = carried(scene, picked, hand)
        scene, info = update(scene, _observe(rng, rest, CATS[[0, 2]]), T_CAM, SENSOR, t, cfg,
                             held={picked})
        assert picked not in info["missed"] and not info["removed"], k
    assert np.linalg.norm(scene.get(picked).mean - (put + [0, 0, 0.05])) < 1e-9
    # let go: the frames see it where it was put down, and that is the same track
    for _ in range(3):
        t += 0.1
        scene, info = update(scene, _observe(rng, np.vstack([rest, put]), CATS[[0, 2, 1]]),
                             T_CAM, SENSOR, t, cfg)
        assert not info["born"]
    assert len(scene.objects) == 3 and np.linalg.norm(scene.get(picked).mean - put) < 0.03
    # without it the track is missed where it stood and the object is born again elsewhere
    scene2, _ = _run(rng, 15)
    old, born = _by_position(scene2, TRUTH[1]).id, []
    for _ in range(3):
        scene2, info = update(scene2, _observe(rng, np.vstack([rest, put]), CATS[[0, 2, 1]]),
                              T_CAM, SENSOR, scene2.stamp + 0.1, cfg)
        born += info["born"]
    assert len(born) == 1 and born[0] != old
    # a merged alias names its track too; unknown ids and bad positions
    aliased = replace(scene, objects=tuple(replace(o, merged=frozenset({"obj_99"}))
                                           if o.id == picked else o for o in scene.objects))
    assert np.allclose(carried(aliased, "obj_99", [1.0, 1.0, 1.0]).get(picked).mean, 1.0)
    assert carried(scene, "nobody", [1.0, 1.0, 1.0]) is scene
    with pytest.raises(ValueError, match="position must be 3 finite"):
        carried(scene, picked, [np.nan, 0.0, 0.0])
