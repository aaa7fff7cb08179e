"""Unit tests of models/segmentation.py on synthetic RGB-D frames and point clouds."""

from pathlib import Path

import numpy as np
import pytest

from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    backproject,
    fit_plane_ransac,
    look_at,
    measure_latency,
    project_points,
    render_boxes,
    segment_frame,
    segment_points,
)

INTR = CameraIntrinsics.from_fov(160, 120, np.deg2rad(60.0))
T_CAM = look_at([0.05, -0.55, 0.55], [0.0, 0.0, 0.0])
CENTRES = np.array([[0.12, 0.05, 0.04], [-0.12, 0.08, 0.03], [0.0, -0.12, 0.05]])
SIZES = np.array([[0.08, 0.06, 0.08], [0.06, 0.06, 0.06], [0.10, 0.05, 0.10]])
COLOURS = np.array([[250, 0, 0], [0, 250, 0], [0, 0, 250]])


def _scene():
    return render_boxes(INTR, T_CAM, CENTRES, SIZES, COLOURS)


def _match(clusters):
    """Order clusters like CENTRES (nearest centre), checking the match is one-to-one."""
    centres = np.array([c.center for c in clusters])
    idx = [int(np.argmin(np.linalg.norm(centres - c, axis=1))) for c in CENTRES]
    assert sorted(idx) == list(range(len(clusters)))
    return [clusters[i] for i in idx]


def test_backproject_matches_hand_computed_pinhole():
    intr = CameraIntrinsics(fx=2.0, fy=4.0, cx=1.5, cy=1.0, width=4, height=3)
    depth = np.full((3, 4), np.nan, dtype=np.float32)
    depth[1, 3] = 2.0   # u=3, v=1 -> x = (3-1.5)*2/2 = 1.5, y = (1-1)*2/4 = 0
    depth[2, 0] = 1.0   # u=0, v=2 -> x = -0.75, y = 0.25
    depth[0, 0] = 0.0   # zero = no return
    depth[0, 1] = np.inf
    t = np.eye(4)
    t[:3, 3] = [10.0, 0.0, 0.0]
    pts, pix = backproject(depth, intr, t)
    np.testing.assert_array_equal(pix, [1 * 4 + 3, 2 * 4 + 0])
    np.testing.assert_allclose(pts, [[11.5, 0.0, 2.0], [9.25, 0.25, 1.0]])


def test_project_inverts_backproject():
    depth, _ = _scene()
    pts, pix = backproject(depth, INTR, T_CAM)
    uv, z = project_points(pts, INTR, T_CAM)
    np.testing.assert_allclose(uv[:, 0], pix % INTR.width, atol=1e-6)
    np.testing.assert_allclose(uv[:, 1], pix // INTR.width, atol=1e-6)
    np.testing.assert_allclose(z, depth.reshape(-1)[pix], rtol=1e-5)


def test_boxes_on_plane_give_one_cluster_each_with_geometry():
    depth, rgb = _scene()
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0))
    assert len(res.clusters) == 3
    assert len(res.planes) == 1
    np.testing.assert_allclose(res.planes[0][:3], [0.0, 0.0, 1.0], atol=0.02)
    assert abs(res.planes[0][3]) < 0.005
    for cluster, centre, size, colour in zip(_match(res.clusters), CENTRES, SIZES, COLOURS):
        np.testing.assert_allclose(cluster.center, centre, atol=0.012)
        np.testing.assert_allclose(cluster.extent, size, atol=0.015)
        np.testing.assert_allclose(cluster.colour, colour / 255.0, atol=0.02)
        # every pixel of the cluster lies inside the (slightly grown) true box
        pts, pix = backproject(depth, INTR, T_CAM)
        lookup = dict(zip(pix.tolist(), range(pix.size)))
        p = pts[[lookup[i] for i in cluster.pixel_indices.tolist()]]
        assert np.all(np.abs(p - centre) <= 0.5 * size + 0.002)


def test_turned_boxes_get_their_own_size_and_heading():
    # the same scene in a map frame turned by 40 degrees: every box is turned by 40 degrees
    depth, rgb = _scene()
    turn = np.deg2rad(40.0)
    t_map = np.eye(4)
    t_map[:2, :2] = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
    res = segment_frame(depth, rgb, INTR, t_map @ T_CAM, SegmentationConfig(),
                        np.random.default_rng(0))
    centres = CENTRES @ t_map[:3, :3].T
    assert len(res.clusters) == 3
    for cluster in res.clusters:
        (match,) = [i for i, c in enumerate(centres) if np.linalg.norm(c - cluster.center) < 0.015]
        np.testing.assert_allclose(cluster.center, centres[match], atol=0.015)
        # the heading up to quarter turns; length and width swap with it
        quarter = int(np.round((cluster.yaw - turn) / (np.pi / 2)))
        assert abs(cluster.yaw - turn - quarter * np.pi / 2) < np.deg2rad(4.0)
        want = SIZES[match][[1, 0, 2]] if quarter % 2 else SIZES[match]
        np.testing.assert_allclose(cluster.extent, want, atol=0.015)
    # the axis-aligned boxes of the unturned frame keep heading 0
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0))
    assert [c.yaw for c in res.clusters] == [0.0, 0.0, 0.0]


def test_clusters_cut_by_the_image_border_are_flagged():
    depth, rgb = _scene()
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0))
    assert not any(c.truncated for c in res.clusters)
    t_cam = look_at([0.05, -0.55, 0.55], [-0.33, 0.05, 0.0])  # first box at the right edge
    depth, rgb = render_boxes(INTR, t_cam, CENTRES, SIZES, COLOURS)
    res = segment_frame(depth, rgb, INTR, t_cam, SegmentationConfig(), np.random.default_rng(0))
    cut = [c for c in res.clusters if c.truncated]
    assert len(cut) == 1 and np.linalg.norm(cut[0].center - CENTRES[0]) < 0.05
    for c in cut:
        col = c.pixel_indices % INTR.width
        assert col.max() >= INTR.width - 2 or col.min() <= 1 or \
            (c.pixel_indices // INTR.width).max() >= INTR.height - 2


def test_plane_pixels_are_removed():
    depth, rgb = _scene()
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(1))
    plane_pixels = np.all(rgb == [120, 120, 120], axis=-1) & np.isfinite(depth)
    # table pixels: removed as plane; none ends up in a cluster
    assert np.mean(res.labels[plane_pixels] == -2) > 0.97
    assert not np.any(res.labels[plane_pixels] >= 0)
    assert res.n_plane_points == int(np.sum(res.labels == -2))


def test_a_frame_of_bare_floor_has_no_clusters():
    depth, rgb = render_boxes(INTR, T_CAM, np.zeros((0, 3)), np.zeros((0, 3)))
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0))
    assert res.clusters == () and res.n_plane_points > 0.9 * res.n_valid_points
    assert not np.any(res.labels >= 0)


def test_nans_and_invalid_depth_are_ignored():
    depth, rgb = _scene()
    rng = np.random.default_rng(2)
    bad = rng.random(depth.shape)
    depth[bad < 0.15] = np.nan
    depth[(bad >= 0.15) & (bad < 0.2)] = np.inf
    depth[(bad >= 0.2) & (bad < 0.25)] = 0.0
    depth[(bad >= 0.25) & (bad < 0.27)] = -1.0
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0))
    assert len(res.clusters) == 3
    for cluster, centre in zip(_match(res.clusters), CENTRES):
        np.testing.assert_allclose(cluster.center, centre, atol=0.015)
    assert np.all(res.labels[bad < 0.27] == -1)


def test_segment_points_on_a_tilted_cloud_without_up_constraint():
    rng = np.random.default_rng(3)
    plane = np.column_stack([rng.uniform(-0.5, 0.5, (3000, 2)), np.zeros(3000)])
    blob_a = rng.normal([0.2, 0.2, 0.05], 0.01, (300, 3))
    blob_b = rng.normal([-0.2, 0.0, 0.05], 0.01, (300, 3))
    pts = np.vstack([plane, blob_a, blob_b])
    rot = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(1.0), -np.sin(1.0)],
                    [0.0, np.sin(1.0), np.cos(1.0)]])
    cfg = SegmentationConfig(max_planes=1, require_support=False)  # a wall at 57 degrees
    labels, planes = segment_points(pts @ rot.T, cfg, np.random.default_rng(0))
    assert np.mean(labels[:3000] == -2) > 0.99
    assert len(planes) == 1 and abs(abs(planes[0][:3] @ rot[:, 2]) - 1.0) < 1e-3
    assert set(np.unique(labels[3000:3300])) == {0} or set(np.unique(labels[3000:3300])) == {1}
    assert np.unique(labels[3300:]).size == 1 and labels[3300] != labels[3000]


def test_floating_and_oversized_clusters_are_rejected():
    centres = np.vstack([CENTRES, [[0.0, 0.15, 0.35]]])  # a box hovering 30 cm above the table
    sizes = np.vstack([SIZES, [[0.06, 0.06, 0.06]]])
    t_cam = look_at([0.05, -0.7, 0.8], [0.0, 0.0, 0.1])
    depth, rgb = render_boxes(INTR, t_cam, centres, sizes)
    rng = np.random.default_rng(0)
    res = segment_frame(depth, rgb, INTR, t_cam, SegmentationConfig(), rng)
    assert len(res.clusters) == 3
    assert max(c.center[2] for c in res.clusters) < 0.1
    floating = segment_frame(depth, rgb, INTR, t_cam, SegmentationConfig(require_support=False),
                             rng)
    assert len(floating.clusters) == 4
    assert np.any(res.labels == -3)
    (hover,) = [c for c in floating.clusters if c.center[2] > 0.3]
    np.testing.assert_allclose(hover.center, [0.0, 0.15, 0.35], atol=0.01)
    np.testing.assert_array_equal(np.flatnonzero(res.labels == -3), np.sort(hover.pixel_indices))
    small = segment_frame(depth, rgb, INTR, t_cam, SegmentationConfig(max_cluster_extent=0.07),
                          rng)
    assert len(small.clusters) == 1  # only the 6 cm box on the table is small enough
    np.testing.assert_allclose(small.clusters[0].extent, SIZES[1], atol=0.015)


def test_the_sides_of_a_tray_rim_are_not_objects():
    # a 0.40 x 0.30 m tray rim, 1 cm walls 5 cm tall, round a 6 cm box, and a 12 cm long box
    # 5 cm tall outside it (an object as long as any here, not a band)
    walls = [([0.0, 0.145, 0.025], [0.40, 0.01, 0.05]), ([0.0, -0.145, 0.025], [0.40, 0.01, 0.05]),
             ([0.195, 0.0, 0.025], [0.01, 0.28, 0.05]), ([-0.195, 0.0, 0.025], [0.01, 0.28, 0.05])]
    inside, outside = ([0.0, 0.0, 0.04], [0.06, 0.06, 0.08]), ([0.0, -0.3, 0.025],
                                                               [0.12, 0.05, 0.05])
    centres, sizes = (np.array(v) for v in zip(*walls, inside, outside))
    for eye in ([0.1, -0.6, 1.0], [0.1, -0.9, 0.7]):  # from above; lower, the box hides
        t_cam = look_at(eye, [0.0, -0.05, 0.0])      # parts of the sides (short, thin pieces)
        depth, rgb = render_boxes(INTR, t_cam, centres, sizes)
        res = segment_frame(depth, rgb, INTR, t_cam, SegmentationConfig(),
                            np.random.default_rng(0))
        found = sorted(res.clusters, key=lambda c: c.center[1])
        assert len(found) == 2, [np.round(c.extent, 2) for c in found]
        np.testing.assert_allclose(found[0].center[:2], outside[0][:2], atol=0.015)
        np.testing.assert_allclose(found[1].center[:2], inside[0][:2], atol=0.015)
        assert np.all(res.labels[res.labels >= 0] < 2) and np.any(res.labels == -3)
        everything = segment_frame(depth, rgb, INTR, t_cam, SegmentationConfig(band_height=0.0),
                                   np.random.default_rng(0))
        assert len(everything.clusters) >= 4  # without the band rule the rim's sides are objects


def test_ransac_recovers_plane_and_is_seeded():
    rng = np.random.default_rng(4)
    n = np.array([1.0, 2.0, 2.0]) / 3.0
    basis = np.linalg.svd(n[None])[2][1:]
    pts = rng.uniform(-1, 1, (500, 2)) @ basis + 0.3 * n + rng.normal(0, 0.001, (500, 1)) * n
    outliers = rng.uniform(-1, 1, (200, 3))
    cloud = np.vstack([pts, outliers])
    model, inl = fit_plane_ransac(cloud, 0.005, 200, np.random.default_rng(5), up=n)
    np.testing.assert_allclose(model[:3], n, atol=1e-3)
    assert model[3] == pytest.approx(-0.3, abs=1e-3)
    assert inl[:500].all() and inl[500:].mean() < 0.05
    model2, inl2 = fit_plane_ransac(cloud, 0.005, 200, np.random.default_rng(5), up=n)
    np.testing.assert_array_equal(model, model2)
    np.testing.assert_array_equal(inl, inl2)
    # a tilt limit excluding this plane finds nothing
    _, none = fit_plane_ransac(pts, 0.005, 200, np.random.default_rng(5), up=[0, 0, 1],
                               max_tilt=0.2)
    assert not none.any()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d, r, i, t: (np.full_like(d, np.nan), r, i, t), "missing depth"),
        (lambda d, r, i, t: (None, r, i, t), "depth image missing"),
        (lambda d, r, i, t: (d, r, None, t), "camera_info absent"),
        (lambda d, r, i, t: (d[:-1], r[:-1], i, t), "does not match camera_info"),
        (lambda d, r, i, t: (d, r[:, :-1], i, t), "rgb shape"),
        (lambda d, r, i, t: ((d * 1000).astype(np.uint16), r, i, t), "float metres"),
        (lambda d, r, i, t: (d, r, i, t[:3]), "4x4"),
        (lambda d, r, i, t: (d, r, i, 2.0 * t), "rigid"),
    ],
)
def test_bad_input_raises_naming_the_cause(mutate, message):
    depth, rgb = _scene()
    args = mutate(depth, rgb, INTR, T_CAM)
    with pytest.raises(ValueError, match=message):
        segment_frame(*args, SegmentationConfig(), np.random.default_rng(0))


def test_ignore_mask_drops_pixels_and_must_match():
    depth, rgb = _scene()
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0))
    first = _match(res.clusters)[0]
    mask = np.zeros(depth.shape, dtype=bool)
    mask.reshape(-1)[first.pixel_indices] = True
    masked = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(),
                           np.random.default_rng(0), ignore_mask=mask)
    assert len(masked.clusters) == 2 and np.all(masked.labels[mask] == -1)
    with pytest.raises(ValueError, match="ignore_mask shape"):
        segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0),
                      ignore_mask=mask[1:])


def test_self_filter_drops_what_lies_along_the_robot_chain():
    from embodied_aif.models.segmentation import near_capsules

    pts = np.array([[0.0, 0.0, 0.5], [0.05, 0.0, 0.25], [0.2, 0.0, 0.25], [0.0, 0.0, 1.2]])
    chain = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # a vertical 1 m link
    assert near_capsules(pts, chain, 0.1).tolist() == [True, True, False, False]
    assert near_capsules(pts, chain[:1], 0.6).tolist() == [True, True, True, False]  # a sphere
    assert not near_capsules(pts, np.zeros((0, 3)), 1.0).any()
    # a cloud around a bent chain: exactly the points within the radius of a segment
    cloud = np.random.default_rng(3).uniform(-1.0, 1.0, (20000, 3))
    bent = np.array([[0.0, 0.0, 0.0], [0.3, 0.1, 0.4], [0.5, -0.2, 0.3]])
    dist = np.full(len(cloud), np.inf)
    for a, b in zip(bent[:-1], bent[1:]):
        t = np.clip((cloud - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
        dist = np.minimum(dist, np.linalg.norm(cloud - (a + t[:, None] * (b - a)), axis=1))
    for radius in (0.05, 0.3):
        got = near_capsules(cloud, bent, radius)
        assert got.tolist() == (dist <= radius).tolist() and 0 < got.sum() < len(cloud)
    # an "arm" reaching down onto the first box: that box is the robot, the others stay
    depth, rgb = _scene()
    arm = np.array([CENTRES[0] + [0.0, 0.0, 0.4], CENTRES[0] + [0.0, 0.0, 0.02]])
    res = segment_frame(depth, rgb, INTR, T_CAM, SegmentationConfig(), np.random.default_rng(0),
                        self_chain=arm, self_radius=0.08)
    centres = np.array([c.center for c in res.clusters])
    assert len(res.clusters) == 2
    assert np.linalg.norm(centres[:, :2] - CENTRES[0, :2], axis=1).min() > 0.1


def test_bad_camera_info_raises():
    with pytest.raises(ValueError, match="uncalibrated"):
        CameraIntrinsics.from_k(np.zeros(9), 160, 120)
    with pytest.raises(ValueError, match="focal"):
        CameraIntrinsics(fx=-1.0, fy=1.0, cx=80.0, cy=60.0, width=160, height=120)
    with pytest.raises(ValueError, match="principal point"):
        CameraIntrinsics(fx=100.0, fy=100.0, cx=800.0, cy=60.0, width=160, height=120)
    with pytest.raises(ValueError, match="not finite"):
        CameraIntrinsics(fx=np.nan, fy=1.0, cx=80.0, cy=60.0, width=160, height=120)
    intr = CameraIntrinsics.from_k([100, 0, 80, 0, 110, 60, 0, 0, 1], 160, 120)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (100.0, 110.0, 80.0, 60.0)


def test_measure_latency_reports_five_clusters():
    out = measure_latency(np.random.default_rng(0), n_objects=5, repeats=2)
    assert out["n_clusters"] == 5 and out["frame"] == "320x240"
    assert out["median_ms"] > 0.0


def test_robot_boxes_are_parsed_and_checked_in_the_base_frame():
    from embodied_aif.models.segmentation import in_boxes
    from embodied_aif.models.transforms import boxes_from_values

    boxes = boxes_from_values([-0.3, -0.2, 0.0, 0.3, 0.2, 0.3])
    t_base_map = np.eye(4)
    t_base_map[:3, 3] = [-2.0, 0.0, 0.0]  # the base stands at x = 2 in the map
    pts = np.array([[2.1, 0.1, 0.2], [2.1, 0.1, 0.4], [0.1, 0.1, 0.2]])
    assert in_boxes(pts, t_base_map, boxes).tolist() == [True, False, False]
    assert not in_boxes(pts, t_base_map, np.zeros((0, 6))).any()
    for bad, why in (([0.0] * 5, '6 numbers per box'), ([0, 0, 0, 1, 1, float('nan')], 'finite'),
                     ([0, 0, 0, 1, -1, 1], 'box 0: minimum')):
        with pytest.raises(ValueError, match=why):
            boxes_from_values(bad)


def test_the_simulated_robot_seen_by_its_cameras_is_not_an_object():
    """Rendered by PyBullet: arm poses in which the head and wrist cameras see the robot.

    The arm chain alone leaves clusters on the shoulder (its housings reach past the chain's
    radius) and on the mast; the configured body boxes remove them and nothing else.
    """
    import yaml

    from embodied_aif.models.transforms import boxes_from_values, matrix
    from embodied_aif.sim.simulation import Simulation

    with open(Path(__file__).parents[2] / 'config' / 'embodied_aif.yaml') as f:
        params = yaml.safe_load(f)['perception']['ros__parameters']
    boxes = boxes_from_values(params['self_filter_boxes'])
    config = SegmentationConfig(voxel_size=params['voxel_size'],
                                plane_distance=params['plane_distance'],
                                cluster_eps=params['cluster_eps'],
                                min_cluster_voxels=params['min_cluster_voxels'],
                                max_depth=params['max_depth'])
    on_robot = {False: [], True: []}
    others = {False: 0, True: 0}
    with Simulation() as sim:
        sim.reset(seed=0)
        for q in ((0.0, 0.3, 0.0, -2.6, 0.0, 1.2, 0.785), (2.6, 0.2, 0.0, -2.4, 0.0, 2.2, 0.785)):
            sim.set_arm_joint_targets(q)
            sim.step(int(3.0 / sim.dt))
            links = sim.link_poses()
            t_base_map = np.linalg.inv(matrix(*links['base_link']))
            chain = np.array([links[n][0] for n in params['self_filter_frames']])
            for camera in ('head_camera', 'wrist_camera'):
                frame = sim.render(camera)
                intr = CameraIntrinsics.from_k(frame.intrinsics.k, *frame.depth.shape[::-1])
                for use_boxes in (False, True):
                    res = segment_frame(
                        frame.depth, frame.rgb, intr, matrix(*links[frame.frame]), config,
                        np.random.default_rng(0), self_chain=chain,
                        self_radius=params['self_filter_radius'],
                        self_boxes=(t_base_map, boxes) if use_boxes else None)
                    for c in res.clusters:
                        x, y, z = (t_base_map @ [*c.center, 1.0])[:3]
                        if abs(x) < 0.4 and abs(y) < 0.3 and z < 1.35:
                            on_robot[use_boxes].append((camera, np.round([x, y, z], 2)))
                        else:
                            others[use_boxes] += 1
    assert len(on_robot[False]) >= 2, on_robot  # the case is real: the robot is in view
    assert on_robot[True] == [], on_robot[True]
    assert others[True] == others[False] > 0
