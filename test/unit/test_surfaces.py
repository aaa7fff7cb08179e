"""models.surfaces: support surfaces from plane points, grown over views; place spots on them."""
import math

import numpy as np
import pytest

from embodied_aif.models.surfaces import (
    SurfaceConfig,
    SurfaceMap,
    place_spots,
    plane_points,
    rectangle_spots,
)


def table_points(x0, x1, y0, y1, z, yaw=0.0, spacing=0.01, rng=None):
    xs, ys = np.meshgrid(np.arange(x0, x1, spacing), np.arange(y0, y1, spacing))
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    c, s = math.cos(yaw), math.sin(yaw)
    xy = xy @ np.array([[c, s], [-s, c]])
    noise = (rng or np.random.default_rng(0)).normal(0, 0.003, len(xy))
    return np.column_stack([xy, z + noise])


def test_a_table_seen_in_two_halves_becomes_one_surface_the_floor_and_walls_do_not():
    cfg = SurfaceConfig()
    left = table_points(1.0, 1.6, 0.0, 0.8, 0.62)
    right = table_points(1.55, 2.2, 0.0, 0.8, 0.63)
    floor = table_points(0.0, 3.0, -1.0, 1.0, 0.0, spacing=0.03)
    wall = np.column_stack([np.full(400, 3.0), np.linspace(-1, 1, 400), np.linspace(0, 1.4, 400)])
    planes = [(0, 0, 1, -0.62), (0, 0, 1, 0.0), (1, 0, 0, -3.0)]
    smap = SurfaceMap(cfg)
    smap.integrate(plane_points(np.vstack([left, floor, wall]), planes, cfg))
    smap.integrate(plane_points(np.vstack([right, floor]), [(0, 0, 1, -0.63), (0, 0, 1, 0.0)],
                                cfg))
    assert len(smap.surfaces) == 1
    table = smap.surfaces[0]
    assert table.height == pytest.approx(0.625, abs=0.01)
    cx, cy, yaw, length, width = table.rectangle(cfg.cell)
    assert (cx, cy) == pytest.approx((1.6, 0.4), abs=0.05)
    assert (length, width) == pytest.approx((1.2, 0.8), abs=0.08)
    assert abs(math.sin(yaw)) < 0.1  # its long side along x
    # a shelf board at another height is another surface
    smap.integrate(plane_points(table_points(1.0, 1.6, 0.0, 0.8, 1.0), [(0, 0, 1, -1.0)], cfg))
    assert len(smap.surfaces) == 2
    assert [s.id for s in smap.nearest((1.6, 0.4))][:1] in ([0], [2])
    assert smap.nearest((10.0, 10.0), within=1.0) == []


def test_a_wall_cut_at_table_height_does_not_stretch_the_table_it_touches():
    cfg = SurfaceConfig()
    table = table_points(0.05, 0.65, 1.2, 2.3, 0.62)       # against the wall at x = 0
    # the wall's points within the plane's inlier band: a 3 cm strip along the wall, 4 m long
    ys = np.linspace(-1.0, 3.0, 800)
    wall = np.column_stack([np.tile([0.0, 0.02], 400), ys, np.full(800, 0.62)])
    smap = SurfaceMap(cfg)
    smap.integrate(plane_points(np.vstack([table, wall]), [(0, 0, 1, -0.62)], cfg))
    assert len(smap.surfaces) == 1
    cx, cy, _, length, width = smap.surfaces[0].rectangle(cfg.cell)
    assert (cx, cy) == pytest.approx((0.35, 1.75), abs=0.06)
    assert (length, width) == pytest.approx((1.1, 0.6), abs=0.1)


def test_a_table_seen_in_part_keeps_its_heading_and_stays_inside_its_edges():
    # a 1.24 x 0.6 table turned 0.3 rad, seen up to a diagonal (the camera's view cut it) and
    # with a hole where objects stood: its principal axes turn away from the table's
    cfg = SurfaceConfig()
    yaw = 0.3
    pts = table_points(0.0, 1.24, 0.0, 0.6, 0.62)
    u, v = pts[:, 0], pts[:, 1]
    seen = (u + 1.6 * v < 1.5) & ~((np.abs(u - 0.35) < 0.12) & (np.abs(v - 0.3) < 0.1))
    c, s = math.cos(yaw), math.sin(yaw)
    turned = np.column_stack([c * u - s * v, s * u + c * v, pts[:, 2]])[seen]
    smap = SurfaceMap(cfg)
    smap.integrate(plane_points(turned, [(0, 0, 1, -0.62)], cfg))
    (table,) = smap.surfaces
    cx, cy, rect_yaw, length, width = table.rectangle(cfg.cell)
    assert abs(math.sin(rect_yaw - yaw)) < math.sin(math.radians(3.0)), math.degrees(rect_yaw)
    assert length >= width
    # its corners, in the table's own frame, lie on the table give or take a cell and a half
    # (the map's grid is turned against the table: an edge cell reaches past the edge)
    tol = 1.5 * cfg.cell
    cr, sr = math.cos(rect_yaw), math.sin(rect_yaw)
    for du, dv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        x = cx + du * length / 2 * cr - dv * width / 2 * sr
        y = cy + du * length / 2 * sr + dv * width / 2 * cr
        tu, tv = c * x + s * y, -s * x + c * y
        assert -tol <= tu <= 1.24 + tol and -tol <= tv <= 0.6 + tol, (tu, tv)


def test_a_sparse_band_past_the_edge_is_not_in_the_outline():
    # a table seen over many frames, and in each a few stray points 4-8 cm past its near edge
    cfg = SurfaceConfig()
    smap = SurfaceMap(cfg)
    rng = np.random.default_rng(3)
    for _ in range(10):
        table = table_points(0.0, 1.2, 0.0, 0.6, 0.62, rng=rng)
        band = np.column_stack([rng.uniform(0.0, 1.2, 30), rng.uniform(-0.08, 0.0, 30),
                                np.full(30, 0.62)])
        smap.integrate(plane_points(np.vstack([table, band]), [(0, 0, 1, -0.62)], cfg))
    (surface,) = smap.surfaces
    cx, cy, _, length, width = surface.rectangle(cfg.cell)
    assert cy - width / 2 >= -cfg.cell / 2 - 1e-9, (cy, width)  # the band is left out
    assert (length, width) == pytest.approx((1.2, 0.6), abs=cfg.cell)


def test_place_spots_keep_inside_the_edge_and_clear_of_objects_nearest_first():
    cfg = SurfaceConfig(edge_margin=0.1)
    smap = SurfaceMap(cfg)
    yaw = 0.5
    smap.integrate(plane_points(table_points(0.0, 1.0, 0.0, 0.6, 0.7, yaw=yaw), [(0, 0, 1, -0.7)],
                                cfg))
    (table,) = smap.surfaces
    _, _, rect_yaw, length, width = table.rectangle(cfg.cell)
    assert (length, width) == pytest.approx((1.0, 0.6), abs=0.1)
    assert abs(math.sin(rect_yaw - yaw)) < 0.1
    mug = ((0.45 * math.cos(yaw) - 0.3 * math.sin(yaw)), 0.45 * math.sin(yaw) + 0.3 * math.cos(yaw))
    spots = place_spots(table, cfg, near=(0.0, 0.0), keep_clear=[(mug, 0.15)])
    assert len(spots) > 10
    # inside the rotated rectangle, at least the margin from its edges (give or take a 4 cm cell)
    c, s = math.cos(yaw), math.sin(yaw)
    local = spots @ np.array([[c, -s], [s, c]])
    assert local[:, 0].min() >= 0.1 - 0.04 and local[:, 0].max() <= 0.9 + 0.04
    assert local[:, 1].min() >= 0.1 - 0.04 and local[:, 1].max() <= 0.5 + 0.04
    assert np.min(np.linalg.norm(spots - mug, axis=1)) >= 0.15
    d = np.linalg.norm(spots, axis=1)
    assert np.all(np.diff(d) >= -1e-9)  # nearest the given point first
    assert len(place_spots(table, cfg, limit=3)) == 3
    # a surface too small for the margin offers nothing
    tight = SurfaceConfig(edge_margin=0.4)
    assert len(place_spots(table, tight)) == 0


def test_bad_settings_and_points_are_refused_or_ignored():
    with pytest.raises(ValueError, match='cell'):
        SurfaceConfig(cell=0.0)
    with pytest.raises(ValueError, match='min_height'):
        SurfaceConfig(min_height=1.0, max_height=0.5)
    cfg = SurfaceConfig()
    points = table_points(0.0, 0.5, 0.0, 0.5, 0.7)
    points[::7] = np.nan
    observed = plane_points(points, [(0, 0, 1, -0.7), (0, 0, 0, 0)], cfg)  # a degenerate plane
    assert len(observed) == 1 and np.all(np.isfinite(observed[0][1]))
    small = SurfaceMap(cfg)
    small.integrate(plane_points(table_points(0.0, 0.05, 0.0, 0.05, 0.7), [(0, 0, 1, -0.7)], cfg))
    assert small.surfaces == []  # an object's top face, not a surface


def test_spots_on_a_rectangle_from_a_message():
    yaw = 0.3
    spots = rectangle_spots((1.0, 2.0), yaw, 0.8, 0.5, margin=0.1, spacing=0.05,
                            near=(0.0, 2.0), keep_clear=[((1.0, 2.0), 0.12)])
    assert len(spots) > 20
    c, s = math.cos(yaw), math.sin(yaw)
    local = (spots - [1.0, 2.0]) @ np.array([[c, -s], [s, c]])
    assert np.all(np.abs(local) <= np.array([0.3, 0.15]) + 1e-9)
    assert np.min(np.linalg.norm(spots - [1.0, 2.0], axis=1)) >= 0.12
    assert np.all(np.diff(np.linalg.norm(spots - [0.0, 2.0], axis=1)) >= -1e-9)
    assert len(rectangle_spots((0, 0), 0.0, 0.1, 0.1, margin=0.1, spacing=0.05)) == 0


def test_spots_deep_inside_the_edge_come_before_nearer_shallow_ones():
    # a 1.0 x 0.6 table at the origin; the step's place beside its +y edge
    spots = rectangle_spots((0.0, 0.0), 0.0, 1.0, 0.6, margin=0.1, spacing=0.05,
                            near=(0.0, 1.0), depth=0.2)
    inside = np.minimum(0.5 - np.abs(spots[:, 0]), 0.3 - np.abs(spots[:, 1]))
    deep = inside >= 0.2 - 1e-9
    assert deep[0] and not np.all(deep)
    k = int(np.argmin(deep))  # the deep ones first, nearest the place first ...
    assert np.all(deep[:k]) and not np.any(deep[k:])
    assert np.all(np.diff(np.linalg.norm(spots[:k] - [0.0, 1.0], axis=1)) >= -1e-9)
    assert np.all(np.diff(inside[k:]) <= 1e-9)  # ... then the shallow ones, deepest first
    assert abs(spots[0, 1] - 0.1) < 1e-6  # 0.2 inside the +y edge, not at the 0.1 margin
    # without depth: nearest the place first, at the margin
    plain = rectangle_spots((0.0, 0.0), 0.0, 1.0, 0.6, margin=0.1, spacing=0.05,
                            near=(0.0, 1.0))
    assert abs(plain[0, 1] - 0.2) < 1e-6

