"""Scan geometry and occupancy grids (models/occupancy.py)."""
import math

import numpy as np
import pytest

from embodied_aif.models.occupancy import (
    GridConfig,
    OccupancyView,
    beam_cells,
    cell_to_world,
    clear_ahead,
    combine_layers,
    compose_planar,
    depth_points,
    empty_grid,
    fuse_points,
    integrate_heights,
    integrate_scan,
    scan_in_base,
    seen_cells,
    stall_points,
    world_to_cell,
)

ANGLES = np.linspace(-math.pi, math.pi, 360, endpoint=False)


def test_cells_and_world_points_round_trip():
    shape, res = (40, 60), 0.1
    xy = np.array([[0.0, 0.0], [-2.95, 1.95], [2.91, -1.99]])
    rows, cols = world_to_cell(xy, shape, res)
    assert (rows[0], cols[0]) == (20, 30)
    assert (rows[1], cols[1]) == (39, 0) and (rows[2], cols[2]) == (0, 59)
    np.testing.assert_allclose(cell_to_world(rows, cols, shape, res), xy, atol=res / 2 + 1e-9)


def test_one_beam_frees_the_cells_before_its_return_and_marks_the_return():
    config = GridConfig(resolution=0.1, size=10.0)
    ranges = np.array([2.0, np.inf, np.nan])
    angles = np.array([0.0, math.pi / 2, math.pi])
    grid = integrate_scan(empty_grid(config), (0.0, 0.0, 0.0), ranges, angles, 0.05, 3.0,
                          config)
    (row0,), (col_hit,) = world_to_cell([[2.0, 0.0]], grid.shape, 0.1)
    assert grid[row0, col_hit] == pytest.approx(config.hit)
    assert np.all(grid[row0, 50:col_hit] == pytest.approx(config.miss))
    assert grid[row0, col_hit + 2] == 0.0                 # beyond the return: unknown
    (_,), (col0,) = world_to_cell([[0.0, 0.0]], grid.shape, 0.1)
    assert grid[row0 + 25, col0] < 0 and grid[row0 + 35, col0] == 0.0   # +inf: free to 3 m
    assert np.all(grid[row0, :col0] == 0.0)               # NaN: no information
    # evidence accumulates and is clamped
    for _ in range(20):
        grid = integrate_scan(grid, (0.0, 0.0, 0.0), ranges, angles, 0.05, 3.0, config)
    assert grid.max() == pytest.approx(config.clamp) and grid.min() == pytest.approx(
        -config.clamp)
    # a turned pose turns the beams
    turned = integrate_scan(empty_grid(config), (0.0, 0.0, math.pi / 2), ranges[:1],
                            angles[:1], 0.05, 3.0, config)
    (r,), (c,) = world_to_cell([[0.0, 2.0]], grid.shape, 0.1)
    assert turned[r, c] > 0


def test_seen_cells_are_free_or_hit_and_stay_on_the_grid():
    shape = (50, 50)
    ranges = np.full(360, 1.5)
    free, occupied = beam_cells(shape, (0.0, 0.0, 0.3), ranges, ANGLES, 0.05, 8.0, 0.1)
    seen = seen_cells(shape, (0.0, 0.0, 0.3), ranges, ANGLES, 0.05, 8.0, 0.1)
    assert not np.any(free & occupied)
    np.testing.assert_array_equal(seen, free | occupied)
    # a disc of radius 1.5 m: about pi * 15^2 cells
    assert abs(seen.sum() - math.pi * 15 ** 2) < 0.15 * math.pi * 15 ** 2
    # far outside the grid: nothing, and no error
    assert not seen_cells(shape, (100.0, 0.0, 0.0), ranges, ANGLES, 0.05, 8.0, 0.1).any()
    with pytest.raises(ValueError):
        beam_cells(shape, (0.0, 0.0, 0.0), ranges[:10], ANGLES, 0.05, 8.0, 0.1)


def test_scan_is_moved_from_the_laser_mount_to_the_base():
    ranges = np.full(360, np.inf)
    ranges[180] = 1.0                      # the beam at angle 0 from a laser 0.2 m ahead
    ranges[0] = np.nan
    out = scan_in_base(ranges, ANGLES, (0.2, 0.0, 0.0))
    assert out[180] == pytest.approx(1.2)
    assert np.isnan(out[0]) and np.isinf(out[90])
    np.testing.assert_array_equal(scan_in_base(ranges, ANGLES, (0.0, 0.0, 0.0)), ranges)
    np.testing.assert_allclose(compose_planar((1.0, 2.0, math.pi / 2), (0.2, 0.0, 0.1)),
                               (1.0, 2.2, math.pi / 2 + 0.1), atol=1e-12)


def test_virtual_obstacles_enter_the_scan_ahead():
    pose = (1.0, 1.0, math.pi / 2)
    wall = stall_points(pose, 0.4, 0.2)
    np.testing.assert_allclose(wall.mean(axis=0), (1.0, 1.4), atol=1e-9)
    ranges = np.full(360, np.inf)
    fused = fuse_points(ranges, ANGLES, pose, wall, 8.0)
    assert np.nanmin(fused) == pytest.approx(0.4, abs=0.01)
    assert abs(ANGLES[int(np.argmin(fused))]) < 0.05           # straight ahead of the robot
    assert clear_ahead(ranges, ANGLES, 0.5) and not clear_ahead(fused, ANGLES, 0.5)
    # points out of range change nothing; NaN beams are unknown = not clear
    np.testing.assert_array_equal(fuse_points(ranges, ANGLES, pose, wall + 50.0, 8.0), ranges)
    blind = ranges.copy()
    blind[180] = np.nan
    assert not clear_ahead(blind, ANGLES, 0.5)


def test_a_footprint_fits_only_where_every_cell_is_known_and_free():
    data = np.zeros((40, 60), dtype=np.int8)  # 4 m x 6 m at 0.1 m, origin at (-1, -2)
    data[20, 30] = 100                         # an obstacle cell at x 2.0..2.1, y 0.0..0.1
    data[0:5, :] = -1                          # an unknown strip along y -2.0..-1.5
    view = OccupancyView(data, 0.1, (-1.0, -2.0, 0.0))
    assert view.footprint_free(0.5, 0.5, 0.3)
    assert not view.footprint_free(2.05, 0.05, 0.3)       # on the obstacle
    assert not view.footprint_free(2.35, 0.05, 0.3)       # 0.3 m from it: within reach
    assert view.footprint_free(2.55, 0.05, 0.3)           # 0.5 m from it
    assert not view.footprint_free(0.5, -1.6, 0.3)        # touches the unknown strip
    assert view.footprint_free(0.5, -1.6, 0.3, unknown_is_free=True)
    assert not view.footprint_free(4.9, 0.0, 0.3)         # partly off the grid
    assert not view.footprint_free(0.5, 0.5, 0.3, occupied=0)


def test_a_rotated_grid_is_read_in_its_own_axes():
    data = np.zeros((20, 20), dtype=np.int8)
    data[10, 2] = 100  # cell centre in grid axes (0.25, 1.05)
    view = OccupancyView(data, 0.1, (1.0, 0.0, math.pi / 2))  # grid x along frame y
    # grid (0.25, 1.05) -> frame (1.0 - 1.05, 0.25)
    assert not view.footprint_free(-0.05, 0.25, 0.1)
    assert view.footprint_free(0.5, 0.25, 0.1)
    with pytest.raises(ValueError, match='origin'):
        OccupancyView(data, 0.1, (float('nan'), 0.0, 0.0))


def test_depth_pixels_are_back_projected_into_the_frame():
    k = np.array([[50.0, 0, 20.0], [0, 50.0, 15.0], [0, 0, 1]])
    depth = np.full((30, 40), 2.0)
    depth[0, 0], depth[0, 4] = np.nan, np.inf  # dropped
    depth[4, 0] = 9.0                          # beyond max_range: dropped
    t = np.eye(4)
    t[:3, 3] = [1.0, 2.0, 3.0]
    pts = depth_points(depth, k, t, stride=4, max_range=3.0)
    assert len(pts) == 8 * 10 - 3
    assert np.allclose(pts[:, 2], 5.0)  # all at depth 2 m, shifted by the frame's z
    # the pixel (u 20, v 12) -> centre (20.5, 12.5): x = 0.5 * 2 / 50, y = -2.5 * 2 / 50
    centre = pts[np.argmin(np.hypot(pts[:, 0] - 1.02, pts[:, 1] - 1.9))]
    assert np.allclose(centre, [1.02, 1.9, 5.0])
    with pytest.raises(ValueError, match='intrinsics'):
        depth_points(depth, np.zeros((3, 3)), t)


def test_points_in_the_height_band_mark_obstacles_and_floor_points_free_cells():
    config = GridConfig(resolution=0.1, size=4.0)
    table = np.array([[1.05, 0.05, 0.7], [1.15, 0.05, 0.72]])  # a table top at x 1.0..1.2
    floor = np.array([[0.55, 0.05, 0.01], [1.05, 0.05, 0.0]])  # the floor, once under it
    heights = integrate_heights(empty_grid(config), np.vstack([table, floor]), config,
                                band=(0.15, 1.4), floor_below=0.05)
    rows, cols = world_to_cell(np.array([[1.05, 0.05], [1.15, 0.05], [0.55, 0.05]]),
                               heights.shape, 0.1)
    assert heights[rows[0], cols[0]] > 0 and heights[rows[1], cols[1]] > 0  # obstacle wins
    assert heights[rows[2], cols[2]] < 0                                     # floor seen
    assert np.count_nonzero(heights) == 3
    # the scan passes under the table (free there); the combined grid keeps the table
    scan = np.full_like(heights, -1.0)
    both = combine_layers(scan, heights)
    assert both[rows[0], cols[0]] > 0 and both[rows[2], cols[2]] == -1.0
    assert combine_layers(np.zeros_like(heights), heights)[rows[2], cols[2]] == 0.0  # unknown


def test_occupied_cells_near_a_point_come_back_as_frame_points():
    data = np.zeros((20, 20), dtype=np.int8)
    data[10, 12] = 100  # centre (1.25, 1.05) with the origin at (0, 0)
    data[0, 0] = 100    # far away
    view = OccupancyView(data, 0.1, (0.0, 0.0, 0.0))
    pts = view.occupied_points(1.0, 1.0, 0.5)
    assert np.allclose(pts, [[1.25, 1.05]])
    assert view.occupied_points(1.0, 1.0, 0.2).shape == (0, 2)
    rotated = OccupancyView(data, 0.1, (1.0, 0.0, math.pi / 2))
    assert np.allclose(rotated.occupied_points(-0.05, 1.25, 0.1), [[-0.05, 1.25]])
