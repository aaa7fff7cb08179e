"""Unit tests of models/active_vision.py: EFE terms, info gain, preferences, closed loop."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from embodied_aif.models.active_vision import (
    CandidateConfig,
    CategoryGoal,
    Coverage,
    EfeConfig,
    GoalImage,
    LocaliseConfig,
    SurfaceMap,
    ViewGoal,
    bounded_step,
    evaluate_viewpoints,
    fixed_height_camera,
    goal_poses,
    interpret_goal_image,
    localise_goal,
    pose_error,
    reach_shell,
    sample_viewpoints,
    step,
    view_agreement,
)
from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    Detection,
    ObjectBelief,
    SceneBeliefs,
    SensorModel,
    detection_from_cluster,
    empty_scene,
    update,
)
from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    backproject,
    look_at,
    render_boxes,
    segment_frame,
)

NAMES = ("cup", "box", "ball")
SENSOR = SensorModel(CameraIntrinsics.from_fov(160, 120, np.deg2rad(60.0)))
T_REL = look_at([0.0, -0.3, 0.2], [0.0, 0.0, 0.0])  # goal: 36 cm in front, looking down


def _obj(oid, mean, probs, sigma):
    return ObjectBelief(id=oid, category_probs=np.asarray(probs, dtype=float),
                        mean=np.asarray(mean, dtype=float), cov=sigma ** 2 * np.eye(3),
                        extent=np.full(3, 0.05), colour=np.full(3, np.nan), existence=0.99,
                        last_seen=0.0)


CERTAIN = _obj("a", [0.5, 0.0, 0.03], [0.98, 0.01, 0.01], 0.003)
UNCERTAIN = _obj("b", [-0.5, 0.0, 0.03], [1 / 3, 1 / 3, 1 / 3], 0.05)
SCENE = SceneBeliefs(objects=(CERTAIN, UNCERTAIN), category_names=NAMES)


def _view_of(obj_mean, offset=(0.0, -0.35, 0.25)):
    return look_at(np.asarray(obj_mean) + offset, obj_mean)


def test_terms_add_up_and_info_gain_is_nonnegative():
    rng = np.random.default_rng(0)
    goal = ViewGoal(t_obj_cam=T_REL, category=1)
    views = sample_viewpoints(SCENE, _view_of(CERTAIN.mean), goal, rng, CandidateConfig())
    cfg = EfeConfig(w_position=0.7, w_category=1.3)
    t = evaluate_viewpoints(SCENE, views, SENSOR, goal, cfg)
    np.testing.assert_allclose(t["efe"], t["pragmatic"] + t["epistemic"])
    np.testing.assert_allclose(t["epistemic"], -(0.7 * t["info_gain_position"]
                                                 + 1.3 * t["info_gain_category"]))
    assert np.all(t["info_gain_position"] >= 0.0) and np.all(t["info_gain_category"] >= 0.0)
    assert np.any(t["info_gain_position"] > 0.0) and np.any(t["info_gain_category"] > 0.0)
    # switches
    off = evaluate_viewpoints(SCENE, views, SENSOR, goal, EfeConfig(use_epistemic=False))
    np.testing.assert_allclose(off["efe"], off["pragmatic"])
    np.testing.assert_allclose(off["pragmatic"], t["pragmatic"])
    free = evaluate_viewpoints(SCENE, views, SENSOR, None, cfg)
    np.testing.assert_allclose(free["efe"], t["epistemic"])


def test_info_gain_matches_kalman_entropy_drop_and_explicit_mutual_information():
    view = _view_of(UNCERTAIN.mean)
    scene = SceneBeliefs(objects=(UNCERTAIN,), category_names=NAMES)
    cfg = EfeConfig(position_resolution=0.01)
    t = evaluate_viewpoints(scene, view[None], SENSOR, None, cfg)
    pd = SENSOR.detection_probability(view, UNCERTAIN.mean)[0]
    assert pd == pytest.approx(0.9)
    # position: entropy before minus after a Kalman update with R + resolution^2 I
    r = SENSOR.position_covariance(view, UNCERTAIN.mean)[0] + 1e-4 * np.eye(3)
    p = UNCERTAIN.cov
    post = p - p @ np.linalg.inv(p + r) @ p
    ig_pos = 0.5 * (np.linalg.slogdet(p)[1] - np.linalg.slogdet(post)[1])
    assert t["info_gain_position"][0] == pytest.approx(0.99 * pd * ig_pos, rel=1e-9)
    # category: I(C; Y) = sum_c,y p(c) p(y|c) log p(y|c) / p(y)
    acc = SENSOR.class_accuracy(view, UNCERTAIN.mean, 3)[0]
    conf = np.full((3, 3), (1 - acc) / 2) + np.eye(3) * (acc - (1 - acc) / 2)
    prior = UNCERTAIN.category_probs
    p_y = prior @ conf
    mi = sum(prior[c] * conf[c, y] * np.log(conf[c, y] / p_y[y])
             for c in range(3) for y in range(3))
    assert t["info_gain_category"][0] == pytest.approx(0.99 * pd * mi, rel=1e-9)


def test_epistemic_term_prefers_views_of_uncertain_objects():
    views = np.stack([_view_of(CERTAIN.mean), _view_of(UNCERTAIN.mean)])
    pd = SENSOR.detection_probability(views, np.stack([CERTAIN.mean, UNCERTAIN.mean]))
    np.testing.assert_allclose(pd, [[0.9, 0.0], [0.0, 0.9]])  # each view sees one object
    t = evaluate_viewpoints(SCENE, views, SENSOR, None, EfeConfig())
    assert t["epistemic"][1] < t["epistemic"][0] - 1.0
    assert t["info_gain_category"][1] > t["info_gain_category"][0]
    # a closer view of the uncertain object is more informative than a distant one
    far = _view_of(UNCERTAIN.mean, offset=(0.0, -1.4, 1.0))
    t2 = evaluate_viewpoints(SCENE, np.stack([views[1], far]), SENSOR, None, EfeConfig())
    assert t2["epistemic"][0] < t2["epistemic"][1]


def test_pragmatic_term_prefers_the_goal_viewpoint():
    goal = ViewGoal(t_obj_cam=T_REL, category=0)
    exact = goal_poses(SCENE, goal)  # goal pose for each object
    np.testing.assert_allclose(exact[0, :3, 3], CERTAIN.mean + T_REL[:3, 3])
    rng = np.random.default_rng(1)
    shifted = np.tile(exact[0], (20, 1, 1))
    shifted[:, :3, 3] += rng.normal(0.0, 0.05, size=(20, 3))
    turned = np.tile(exact[0], (20, 1, 1))
    turned[:, :3, :3] = exact[0, :3, :3] @ Rotation.from_rotvec(
        rng.normal(0.0, 0.3, size=(20, 3))).as_matrix()
    views = np.concatenate([exact, shifted, turned])
    t = evaluate_viewpoints(SCENE, views, SENSOR, goal, EfeConfig())
    assert np.argmin(t["pragmatic"]) == 0
    # hand-computed: -log w_k + Gaussian normaliser + trace term (the other object is 1 m off)
    w = np.array([0.99 * 0.98, 0.99 / 3])
    w /= w.sum()
    s2 = goal.sigma_position ** 2
    const = 1.5 * np.log(2 * np.pi * s2)
    for k, obj in enumerate(SCENE.objects):
        expected = -np.log(w[k]) + const + 0.5 * np.trace(obj.cov) / s2
        assert t["pragmatic"][k] == pytest.approx(expected, rel=1e-9)
    # the goal object named by id wins even against the category evidence
    by_id = ViewGoal(t_obj_cam=T_REL, object_id="b")
    t = evaluate_viewpoints(SCENE, exact, SENSOR, by_id, EfeConfig())
    assert t["pragmatic"][1] < t["pragmatic"][0]
    expected = const + 0.5 * np.trace(UNCERTAIN.cov) / s2  # w = 1 for the named object
    assert t["pragmatic"][1] == pytest.approx(expected, rel=1e-9)


def test_category_goal_prefers_views_that_see_that_category():
    views = np.stack([_view_of(CERTAIN.mean), _view_of(UNCERTAIN.mean)])
    t = evaluate_viewpoints(SCENE, views, SENSOR, CategoryGoal(category=0), EfeConfig())
    p_seen = 0.9 * 0.99 * 0.98
    assert t["pragmatic"][0] == pytest.approx(-np.log(1e-3 + (1 - 1e-3) * p_seen))
    assert t["pragmatic"][0] < t["pragmatic"][1]


def test_bounded_step_limits_translation_and_rotation():
    cur = np.eye(4)
    tgt = np.eye(4)
    tgt[:3, 3] = [0.3, 0.4, 0.0]
    tgt[:3, :3] = Rotation.from_rotvec([0.0, 0.0, 0.5]).as_matrix()
    nxt = bounded_step(cur, tgt, 0.1, 0.2)
    np.testing.assert_allclose(nxt[:3, 3], [0.06, 0.08, 0.0])
    np.testing.assert_allclose(Rotation.from_matrix(nxt[:3, :3]).as_rotvec(), [0, 0, 0.2])
    assert pose_error(bounded_step(cur, tgt, 1.0, 1.0), tgt) == pytest.approx((0.0, 0.0),
                                                                               abs=1e-6)


def test_sampling_includes_current_and_exact_goal_poses_within_bounds():
    rng = np.random.default_rng(2)
    cur = _view_of(CERTAIN.mean)
    goal = ViewGoal(t_obj_cam=T_REL, category=0)
    cfg = CandidateConfig(n_around_objects=50, n_around_goal=10, n_local=10,
                          position_min=(-1.0, -1.0, 0.1))
    views = sample_viewpoints(SCENE, cur, goal, rng, cfg)
    assert views.shape == (1 + 50 + 2 + 10 + 10, 4, 4)
    np.testing.assert_allclose(views[0], cur)
    np.testing.assert_allclose(views[51:53], goal_poses(SCENE, goal))
    assert np.all(views[:, 2, 3] >= 0.1) and np.all(views[:, :2, 3] >= -1.0)
    dets = np.linalg.det(views[:, :3, :3])
    np.testing.assert_allclose(dets, 1.0, atol=1e-9)
    # look-at samples aim at an object: its projection is at the image centre
    for v in views[1:51]:
        uv = [SENSOR.geometry(v, o.mean)[0][0] for o in SCENE.objects]
        assert min(np.linalg.norm(np.asarray(uv) - [80.0, 60.0], axis=1)) < 1e-6
    # empty scene: exploration views of the workspace, nothing to gain yet
    empty = empty_scene(NAMES)
    views = sample_viewpoints(empty, cur, None, rng, cfg)
    t = evaluate_viewpoints(empty, views, SENSOR, ViewGoal(t_obj_cam=T_REL), EfeConfig())
    assert np.all(t["epistemic"] == 0.0) and np.ptp(t["pragmatic"]) == 0.0


def test_feasibility_maps_and_constrained_step():
    rng = np.random.default_rng(3)
    views = sample_viewpoints(SCENE, _view_of(CERTAIN.mean), None, rng, CandidateConfig())
    head = fixed_height_camera(1.2, 0.6)(views)
    np.testing.assert_allclose(head[:, 2, 3], 1.2)
    np.testing.assert_allclose(head[:, :2, 3], views[:, :2, 3])
    np.testing.assert_allclose(np.linalg.det(head[:, :3, :3]), 1.0, atol=1e-9)
    np.testing.assert_allclose(head[:, 2, 2], -np.sin(0.6), atol=1e-12)  # pitched down
    np.testing.assert_allclose(head[:, 2, 0], 0.0, atol=1e-12)  # no roll: x horizontal
    heading = np.arctan2(views[:, 1, 2], views[:, 0, 2])
    np.testing.assert_allclose(np.arctan2(head[:, 1, 2], head[:, 0, 2]), heading, atol=1e-9)
    arm = reach_shell([0.0, 0.0, 0.5], 0.2, 0.6)(views)
    r = np.linalg.norm(arm[:, :3, 3] - [0.0, 0.0, 0.5], axis=1)
    assert np.all((r >= 0.2 - 1e-9) & (r <= 0.6 + 1e-9))
    np.testing.assert_allclose(arm[:, :3, :3], views[:, :3, :3])
    r0 = np.linalg.norm(views[:, :3, 3] - [0.0, 0.0, 0.5], axis=1)
    inside = (r0 >= 0.2) & (r0 <= 0.6)
    assert 0 < inside.sum() < len(views)
    np.testing.assert_allclose(arm[inside], views[inside])
    cur = fixed_height_camera(1.2, 0.6)(_view_of(UNCERTAIN.mean)[None])[0]
    nxt, info = step(SCENE, cur, SENSOR, None, rng, EfeConfig(), CandidateConfig(),
                     feasible=fixed_height_camera(1.2, 0.6))
    assert info["best"][2, 3] == pytest.approx(1.2) and nxt[2, 3] == pytest.approx(1.2)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"\(V, 4, 4\)"):
        evaluate_viewpoints(SCENE, np.eye(4), SENSOR, None, EfeConfig())
    with pytest.raises(ValueError, match="out of range"):
        evaluate_viewpoints(SCENE, np.eye(4)[None], SENSOR, CategoryGoal(5), EfeConfig())
    with pytest.raises(ValueError, match="rigid"):
        ViewGoal(t_obj_cam=2 * np.eye(4))
    with pytest.raises(ValueError, match="max_step"):
        CandidateConfig(max_step_m=0.0)


def _closed_loop(seed, target, steps):
    """Simulated move-to: noisy detections -> beliefs -> one bounded EFE step, repeated."""
    truth = np.array([[0.2, 0.1, 0.03], [-0.15, 0.2, 0.03], [0.05, -0.2, 0.03]])
    cats = np.array([0, 1, 2])
    goal = ViewGoal(t_obj_cam=T_REL, category=int(cats[target]))
    true_goal = T_REL.copy()
    true_goal[:3, 3] += truth[target]
    world = np.random.default_rng(seed)       # simulated detector
    rng = np.random.default_rng(seed + 1000)  # the agent's sampling
    cam = look_at([0.3, -0.6, 0.6], [0.0, 0.0, 0.0])
    scene = empty_scene(NAMES)
    cc = CandidateConfig(n_around_objects=96, n_around_goal=24, n_local=24)
    errors = []
    for s in range(steps):
        pd = SENSOR.detection_probability(cam, truth)
        covs = SENSOR.position_covariance(cam, truth)
        conf = SensorModel.confusion(SENSOR.class_accuracy(cam, truth, 3), 3)
        dets = []
        for i in np.flatnonzero(world.random(3) < pd):
            y = world.choice(3, p=conf[i, cats[i]])
            dets.append(Detection(world.multivariate_normal(truth[i], covs[i]), covs[i],
                                  conf[i, :, y]))
        scene, _ = update(scene, dets, cam, SENSOR, 0.1 * (s + 1), BeliefConfig())
        nxt, info = step(scene, cam, SENSOR, goal, rng, EfeConfig(), cc)
        dist, angle = pose_error(nxt, cam)
        assert dist <= cc.max_step_m + 1e-9 and angle <= cc.max_step_rad + 1e-6
        cam = nxt
        errors.append(pose_error(cam, true_goal))
    return np.array(errors)


@pytest.mark.parametrize(("seed", "target"), [(0, 1), (1, 2)])
def test_closed_loop_converges_to_the_goal_viewpoint(seed, target):
    errors = _closed_loop(seed, target, 60)
    assert errors[0, 0] > 0.3  # starts far away
    ok = (errors[:, 0] < 0.075) & (errors[:, 1] < 0.5)
    assert ok.any() and np.argmax(ok) < 40
    assert ok[-10:].all()  # and stays there


def test_closed_loop_on_rendered_frames_with_segmentation():
    """Render -> segment -> detections (a colour classifier) -> beliefs -> EFE step."""
    centres = np.array([[0.2, 0.1, 0.03], [-0.15, 0.2, 0.04], [0.05, -0.2, 0.035]])
    sizes = np.array([[0.06, 0.06, 0.06], [0.08, 0.05, 0.08], [0.07, 0.07, 0.07]])
    colours = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230]])  # category = channel
    target = 2
    goal = ViewGoal(t_obj_cam=T_REL, category=target)
    true_goal = T_REL.copy()
    true_goal[:3, 3] += centres[target]
    rng = np.random.default_rng(4)
    cam = look_at([0.3, -0.6, 0.6], [0.0, 0.0, 0.0])
    scene = empty_scene(NAMES)
    cc = CandidateConfig(n_around_objects=96, n_around_goal=24, n_local=24)
    errors = []
    for s in range(40):
        depth, rgb = render_boxes(SENSOR.intrinsics, cam, centres, sizes, colours)
        res = segment_frame(depth, rgb, SENSOR.intrinsics, cam, SegmentationConfig(), rng)
        dets = []
        for c in res.clusters:
            lik = np.full(3, 0.1)
            lik[np.argmax(c.colour)] = 0.8
            dets.append(detection_from_cluster(c, SENSOR, cam, lik))
        scene, _ = update(scene, dets, cam, SENSOR, 0.1 * (s + 1), BeliefConfig(), depth=depth)
        cam, _ = step(scene, cam, SENSOR, goal, rng, EfeConfig(), cc)
        errors.append(pose_error(cam, true_goal))
    errors = np.array(errors)
    ok = (errors[:, 0] < 0.075) & (errors[:, 1] < 0.5)
    assert ok[-5:].all() and errors[-1, 0] < 0.02
    assert len(scene.objects) == 3
    for obj in scene.objects:
        k = int(np.argmax(obj.category_probs))
        assert np.linalg.norm(obj.mean - centres[k]) < 0.015


# ---------------------------------------------------------------- coverage, goal images
def test_epistemic_weight_zero_changes_the_choice():
    goal = ViewGoal(t_obj_cam=T_REL, object_id="a", sigma_position=0.5)  # a loose preference
    views = np.stack([goal_poses(SCENE, goal)[0], _view_of(UNCERTAIN.mean)])
    strong = EfeConfig(w_position=20.0, w_category=20.0)
    with_epi = evaluate_viewpoints(SCENE, views, SENSOR, goal, strong)
    without = evaluate_viewpoints(SCENE, views, SENSOR, goal,
                                  EfeConfig(w_position=20.0, w_category=20.0,
                                            use_epistemic=False))
    assert np.argmin(without["efe"]) == 0  # the goal view
    assert np.argmin(with_epi["efe"]) == 1  # the uncertain object is worth a look first
    np.testing.assert_allclose(with_epi["pragmatic"], without["pragmatic"])


def test_coverage_gain_attracts_views_to_unexplored_cells_and_observe_clears_them():
    cov = Coverage.grid((0.0, 0.0), (0.5, 0.3), 0.0, cell=0.05, prior=0.1)
    assert cov.points.shape == (20 * 12, 3)
    h = -(0.1 * np.log(0.1) + 0.9 * np.log(0.9))
    np.testing.assert_allclose(cov.entropy, h)
    left, right = _view_of([-0.3, 0.0, 0.0]), _view_of([0.3, 0.0, 0.0])
    seen_left = cov.observe(left, SENSOR)
    assert 0.0 < seen_left.remaining < cov.remaining
    gain = seen_left.information_gain(np.stack([left, right]), SENSOR)
    assert gain[1] > gain[0]  # the other half is still unknown
    # exactly sum_c pD(v, c) H_c for the cells left
    pd = SENSOR.detection_probability(right, cov.points)
    assert gain[1] == pytest.approx(float(pd @ seen_left.entropy))
    t = evaluate_viewpoints(empty_scene(NAMES), np.stack([left, right]), SENSOR, None,
                            EfeConfig(w_coverage=2.0), seen_left)
    np.testing.assert_allclose(t["info_gain_coverage"], gain)
    np.testing.assert_allclose(t["epistemic"], -2.0 * gain)
    off = evaluate_viewpoints(empty_scene(NAMES), np.stack([left, right]), SENSOR, None,
                              EfeConfig(use_epistemic=False), seen_left)
    assert np.all(off["efe"] == 0.0)
    with pytest.raises(ValueError, match="prior"):
        Coverage.grid((0.0, 0.0), (0.5, 0.3), 0.0, prior=1.0)


def test_surface_map_colours_and_free_space():
    smap = SurfaceMap.empty([-1.0, -1.0, -0.1], [1.0, 1.0, 1.0], 0.02)
    pts = np.array([[0.1, 0.1, 0.0], [0.1, 0.1, 0.005], [-0.5, 0.2, 0.3]])
    cols = np.array([[1.0, 0.0, 0.0], [0.8, 0.0, 0.0], [0.0, 0.0, 1.0]])
    smap.add(pts, cols, eye=[0.1, 0.1, 0.8])
    assert smap.n_occupied == 2
    np.testing.assert_allclose(smap.lookup(pts[:1])[0], [0.9, 0.0, 0.0], atol=1e-6)
    assert np.all(np.isnan(smap.lookup([[0.5, -0.5, 0.0], [5.0, 0.0, 0.0]])))
    # the ray from the eye down to the first point passed through empty space
    assert smap.is_free([[0.1, 0.1, 0.4]])[0] and not smap.is_free(pts[:1])[0]


def _boxes():
    centres = np.array([[0.2, 0.1, 0.04], [-0.15, 0.2, 0.05], [0.05, -0.2, 0.035]])
    sizes = np.array([[0.06, 0.06, 0.08], [0.1, 0.04, 0.1], [0.07, 0.07, 0.07]])
    colours = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230]])
    return centres, sizes, colours


def _render_table_scene(intr, cam, centres, sizes, colours):
    """The boxes on a finite table (1.0 m x 0.8 m, top at z = 0), nothing else."""
    return render_boxes(intr, cam, np.vstack([centres, [0.05, 0.0, -0.01]]),
                        np.vstack([sizes, [1.0, 0.8, 0.02]]),
                        np.vstack([colours, [150, 110, 70]]), plane_z=None)


def _beliefs(centres, colours):
    objs = tuple(ObjectBelief(id=f"o{k}", category_probs=np.full(3, 1 / 3), mean=c,
                              cov=1e-4 * np.eye(3), extent=np.full(3, 0.06),
                              colour=np.asarray(col) / 255.0, existence=0.9, last_seen=0.0)
                 for k, (c, col) in enumerate(zip(centres, colours)))
    return SceneBeliefs(objects=objs, category_names=NAMES)


def test_goal_image_is_localised_from_beliefs_without_its_pose():
    centres, sizes, colours = _boxes()
    intr = CameraIntrinsics.from_fov(80, 60, np.deg2rad(70.0))
    target = look_at(centres[1] + [0.25, -0.2, 0.25], centres[1])
    depth, rgb = _render_table_scene(intr, target, centres, sizes, colours)
    goal = GoalImage(rgb, depth, intr)
    view = interpret_goal_image(goal, SegmentationConfig(), np.random.default_rng(0))
    assert view.support_height == pytest.approx(-target[2, 3], abs=0.01)
    np.testing.assert_allclose(view.target_colour, colours[1] / 255.0, atol=0.05)
    # the agent has seen the scene from elsewhere: a surface map from three other views
    smap = SurfaceMap.empty([-1.0, -1.0, -0.05], [1.0, 1.0, 1.0], 0.02)
    for eye in ([0.0, -0.7, 0.6], [0.6, 0.3, 0.5], [-0.6, 0.2, 0.6]):
        cam = look_at(eye, [0.0, 0.0, 0.0])
        d, c = _render_table_scene(intr, cam, centres, sizes, colours)
        pts, pix = backproject(d, intr, cam)
        smap.add(pts, c.reshape(-1, 3)[pix] / 255.0, eye=eye)
    scene = _beliefs(centres, colours)
    vgoal, info = localise_goal(view, scene, smap, 0.0, LocaliseConfig())
    assert vgoal is not None and vgoal.object_id == "o1" and info["match"] > 0.5
    dist, angle = pose_error(info["t_map_goal"], target)
    assert dist < 0.03 and angle < 0.1
    np.testing.assert_allclose(goal_poses(scene, vgoal)[1], info["t_map_goal"], atol=1e-9)
    # excluding that hypothesis leaves only worse ones
    _, other = localise_goal(view, scene, smap, 0.0, LocaliseConfig(),
                             exclude=[("o1", info["heading"])])
    assert other["match"] < info["match"]
    assert abs(np.angle(np.exp(1j * (other["heading"] - info["heading"])))) > 0.3 \
        or other["object_id"] != "o1"
    # an empty map explains nothing: no goal yet
    empty = SurfaceMap.empty([-1.0, -1.0, -0.05], [1.0, 1.0, 1.0], 0.02)
    assert localise_goal(view, scene, empty, 0.0, LocaliseConfig())[0] is None


def test_view_agreement_and_bad_goal_images():
    centres, sizes, colours = _boxes()
    intr = CameraIntrinsics.from_fov(80, 60, np.deg2rad(70.0))
    target = look_at(centres[0] + [0.0, -0.3, 0.25], centres[0])
    depth, rgb = render_boxes(intr, target, centres, sizes, colours)
    goal = GoalImage(rgb, depth, intr)
    assert view_agreement(goal, depth, rgb) == pytest.approx(1.0)
    other = look_at(centres[0] + [0.1, -0.45, 0.15], centres[0])  # lower, farther
    d2, c2 = render_boxes(intr, other, centres, sizes, colours)
    assert view_agreement(goal, d2, c2) < 0.8
    with pytest.raises(ValueError, match="does not match"):
        GoalImage(rgb[:10], depth, intr)
    with pytest.raises(ValueError, match="valid depth"):
        interpret_goal_image(GoalImage(rgb, np.full_like(depth, np.nan), intr),
                             SegmentationConfig(), np.random.default_rng(0))
    flat, flat_rgb = render_boxes(intr, target, centres[:0], sizes[:0], colours[:0])
    with pytest.raises(ValueError, match="no object"):
        interpret_goal_image(GoalImage(flat_rgb, flat, intr), SegmentationConfig(),
                             np.random.default_rng(0))
