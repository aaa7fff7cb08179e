"""Local controller: laser scan + goal in the robot frame -> (v, w) that never hits obstacles.

A dynamic-window style search over constant (v, w) arcs. An arc is admissible only if the
circular robot (radius + margin) stays clear of every scan point for the whole check horizon,
which covers the braking distance, so stopping is always possible. Among admissible arcs the
one that best reduces the distance to the goal (with clearance and speed as tie-breakers) is
chosen; when no admissible forward arc makes progress the robot turns in place (a circular
robot turning in place cannot hit anything): towards the goal, or, already facing it, away from
the nearest obstacle so that an arc around it opens (no dead-lock against a corner) - unless
that obstacle is on the side the goal lies well towards, where turning away and back would
alternate for ever (e.g. in a narrow corridor with the goal behind): then on towards the
goal. NaN ranges are treated as obstacles at the minimum range (unknown means unsafe), +inf as
"no return".
:func:`segment_clear` tells whether a straight drive to a point is clear for the footprint and
seen free in the scan (the navigator's shortcuts along its route).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class ControllerConfig:
    """Limits (m/s, rad/s, m, s) and weights of the arc search."""

    max_v: float = 0.5
    max_w: float = 1.2
    robot_radius: float = 0.3
    margin: float = 0.08
    horizon: float = 1.5
    dt: float = 0.1
    v_samples: int = 6
    w_samples: int = 15
    goal_tolerance: float = 0.15
    heading_gain: float = 1.5
    clearance_weight: float = 0.2
    speed_weight: float = 0.1
    escape_angle: float = math.pi / 2
    escape_w: float = 0.6

    def __post_init__(self):
        for name in ('max_v', 'max_w', 'robot_radius', 'horizon', 'dt', 'goal_tolerance',
                     'heading_gain'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'ControllerConfig.{name} must be finite and > 0, got {value}')
        if not self.margin >= 0 or self.v_samples < 2 or self.w_samples < 3:
            raise ValueError(f'need margin >= 0, v_samples >= 2, w_samples >= 3; got '
                             f'{self.margin}, {self.v_samples}, {self.w_samples}')


def scan_points(ranges: np.ndarray, angles: np.ndarray, range_min: float,
                range_max: float) -> np.ndarray:
    """Return obstacle points (M, 2) in the robot frame from a scan (laser at the origin)."""
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    if r.shape != a.shape:
        raise ValueError(f'ranges {r.shape} and angles {a.shape} differ in shape')
    if not np.all(np.isfinite(a)):
        raise ValueError('scan angles must be finite')
    r = np.where(np.isnan(r), range_min, r)
    r = np.maximum(r, range_min)
    keep = r < range_max
    return np.stack([r[keep] * np.cos(a[keep]), r[keep] * np.sin(a[keep])], axis=1)


def scan_to_base(ranges: np.ndarray, angles: np.ndarray, laser_pose, range_min: float,
                 range_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (ranges, angles) of the same scan as seen from the base origin (base_link).

    ``laser_pose`` is the laser's (x, y, yaw) in the base frame. Every function of this stack
    that takes a scan assumes it starts at the robot's origin, so a laser mounted off-centre
    must be re-expressed first. NaN beams become returns at ``range_min`` (unknown = unsafe),
    +inf beams stay +inf (no return) along their direction from the base. Pass the result on
    with range_min = 0 and range_max + |laser offset|.
    """
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    if r.shape != a.shape:
        raise ValueError(f'ranges {r.shape} and angles {a.shape} differ in shape')
    lx, ly, lyaw = (float(v) for v in laser_pose)
    if not all(math.isfinite(v) for v in (lx, ly, lyaw)):
        raise ValueError(f'laser_pose must be finite, got {laser_pose!r}')
    r = np.where(np.isnan(r), range_min, r)
    r = np.maximum(r, range_min)
    c, s_ = math.cos(lyaw), math.sin(lyaw)
    hit = np.isfinite(r) & (r < range_max)
    ux, uy = np.cos(a), np.sin(a)
    rr = np.where(hit, r, 0.0)
    px = lx + c * rr * ux - s_ * rr * uy
    py = ly + s_ * rr * ux + c * rr * uy
    out_r = np.where(hit, np.hypot(px, py), np.inf)
    out_a = np.where(hit, np.arctan2(py, px), np.arctan2(s_ * ux + c * uy, c * ux - s_ * uy))
    return out_r, out_a


def nearest_beam(bearing: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Return the index of the beam whose angle is nearest each bearing (wrapping at +-pi)."""
    a = np.asarray(angles, dtype=float).ravel()
    if not a.size:
        raise ValueError('nearest_beam needs at least one beam angle')
    order = np.argsort(a)
    sorted_a = a[order]
    n = len(sorted_a)
    k = np.searchsorted(sorted_a, bearing)
    k0, k1 = (k - 1) % n, k % n
    d0 = np.abs(np.mod(bearing - sorted_a[k0] + math.pi, 2 * math.pi) - math.pi)
    d1 = np.abs(np.mod(bearing - sorted_a[k1] + math.pi, 2 * math.pi) - math.pi)
    return order[np.where(d0 <= d1, k0, k1)]


def segment_clear(ranges: np.ndarray, angles: np.ndarray, end_xy, range_min: float,
                  range_max: float, clearance: float, step: float = 0.1,
                  start_xy=(0.0, 0.0)) -> bool:
    """Return True when the scan shows the straight drive from ``start_xy`` to ``end_xy`` clear.

    Clear means: every scan return is farther than ``clearance`` from the segment (the robot's
    footprint fits along all of it), and every point of the segment is *seen* free: it lies
    inside the laser's reach and no nearer than the return of the beam along its bearing (a
    NaN beam is unknown, an obstacle at ``range_min``; a beam with no return is free up to
    ``range_max``). Points behind a return, occluded or out of range are not known free, so a
    segment through them is not clear. Both ends are in the robot frame (laser at the origin;
    the segment starts there by default).
    """
    end = np.asarray(end_xy, dtype=float).ravel()
    start = np.asarray(start_xy, dtype=float).ravel()
    if end.shape != (2,) or not np.all(np.isfinite(end)) or start.shape != (2,) or \
            not np.all(np.isfinite(start)):
        raise ValueError(f'end_xy and start_xy must be finite (x, y) in the robot frame, got '
                         f'{end_xy!r}, {start_xy!r}')
    if not (math.isfinite(clearance) and clearance >= 0):
        raise ValueError(f'clearance must be finite and >= 0, got {clearance}')
    delta = end - start
    length = float(np.linalg.norm(delta))
    if max(float(np.linalg.norm(end)), float(np.linalg.norm(start))) >= range_max:
        return False
    points = scan_points(ranges, angles, range_min, range_max)
    if points.size:
        rel = points - start[None, :]
        if length > 0:
            u = delta / length
            t = np.clip(rel @ u, 0.0, length)
            gap = np.linalg.norm(rel - t[:, None] * u[None, :], axis=1)
        else:
            gap = np.linalg.norm(rel, axis=1)
        if float(gap.min()) <= clearance:
            return False
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    r = np.where(np.isnan(r), range_min, r)
    r = np.where(r >= range_max, np.inf, np.maximum(r, range_min))
    samples = np.linspace(0.0, 1.0, max(2, int(math.ceil(length / step)) + 1))
    pts = start[None, :] + samples[:, None] * delta[None, :]
    dist = np.linalg.norm(pts, axis=1)
    pts, dist = pts[dist > 1e-9], dist[dist > 1e-9]
    if not len(pts):
        return True
    beam = nearest_beam(np.arctan2(pts[:, 1], pts[:, 0]), a)
    return bool(np.all(dist <= r[beam]))


def arc_positions(v: np.ndarray, w: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Return (K, T, 2) positions along constant-velocity arcs from the origin, heading +x."""
    v = v[:, None]
    w = w[:, None]
    t = times[None, :]
    small = np.abs(w) < 1e-6
    w_safe = np.where(small, 1.0, w)
    x = np.where(small, v * t, v / w_safe * np.sin(w_safe * t))
    y = np.where(small, 0.0, v / w_safe * (1.0 - np.cos(w_safe * t)))
    return np.stack([x, y], axis=2)


def _escape_turn(near: np.ndarray, bearing: float, turn: float,
                 config: ControllerConfig) -> float:
    """Turn rate in place when no forward arc makes progress.

    Facing away from the goal: turn towards it. Already facing it (within ``escape_angle``)
    but blocked, e.g. by a corner just ahead on one side: turn away from the nearest obstacle,
    so that an arc along it opens (turning towards the goal would only face the corner again).
    """
    if abs(bearing) > config.escape_angle or not near.size:
        return turn if abs(turn) > 1e-3 else config.max_w
    nearest = near[int(np.argmin(np.linalg.norm(near, axis=1)))]
    side = math.atan2(nearest[1], nearest[0])
    away = -math.copysign(config.escape_w, side if abs(side) > 1e-6 else -bearing)
    if abs(bearing) > config.escape_angle / 2 and away * bearing < 0:
        # the goal well to one side, the obstacle on that side: turning away would take the
        # goal behind, then turning back would face the obstacle again (a dead-lock between
        # the two turns); keep turning to the goal (turning in place is always safe)
        return turn if abs(turn) > 1e-3 else math.copysign(config.max_w, bearing)
    return away


def local_command(ranges: np.ndarray, angles: np.ndarray, goal_xy, range_min: float,
                  range_max: float,
                  config: ControllerConfig = ControllerConfig()  # noqa: B008
                  ) -> tuple[float, float]:
    """Return (v, w) driving towards ``goal_xy`` (robot frame) without driving into obstacles."""
    goal = np.asarray(goal_xy, dtype=float).ravel()
    if goal.shape != (2,) or not np.all(np.isfinite(goal)):
        raise ValueError(f'goal must be a finite (x, y) in the robot frame, got {goal_xy!r}')
    dist = float(np.linalg.norm(goal))
    if dist <= config.goal_tolerance:
        return 0.0, 0.0
    points = scan_points(ranges, angles, range_min, range_max)
    bearing = math.atan2(goal[1], goal[0])
    turn = float(np.clip(config.heading_gain * bearing, -config.max_w, config.max_w))
    safe = config.robot_radius + config.margin
    reach = config.max_v * config.horizon + safe
    near = points[np.linalg.norm(points, axis=1) <= reach] if points.size else points
    v = np.repeat(np.linspace(0.0, config.max_v, config.v_samples)[1:], config.w_samples)
    w = np.tile(np.linspace(-config.max_w, config.max_w, config.w_samples),
                config.v_samples - 1)
    times = np.arange(config.dt, config.horizon + 1e-9, config.dt)
    pos = arc_positions(v, w, times)
    if near.size:
        d = cKDTree(near).query(pos.reshape(-1, 2))[0].reshape(pos.shape[:2])
        clearance = d.min(axis=1)
        now = float(np.linalg.norm(near, axis=1).min())
        # admissible: always outside the safety radius, or (already inside it) never closer
        ok = (clearance >= safe) | ((now < safe) & (clearance >= now) & (d[:, 0] >= now))
    else:
        clearance = np.full(len(v), np.inf)
        ok = np.ones(len(v), dtype=bool)
    if abs(bearing) > math.pi / 2:
        return 0.0, turn if abs(turn) > 1e-3 else config.max_w
    # progress within one second of the arc: its closest approach to the goal then (an arc
    # that passes through a near goal has made all the progress there is)
    k = min(len(times) - 1, int(round(1.0 / config.dt)) - 1)
    progress = dist - np.linalg.norm(pos[:, :k + 1, :] - goal, axis=2).min(axis=1)
    if not np.any(ok & (progress > 0.0)):
        return 0.0, _escape_turn(near, bearing, turn, config)
    end_heading = w * times[k]
    heading_err = np.abs(np.angle(np.exp(1j * (bearing - end_heading))))
    score = progress - 0.3 * heading_err + config.clearance_weight * \
        np.minimum(clearance, 1.0) + config.speed_weight * v
    score = np.where(ok & (progress > 0.0), score, -np.inf)
    best = int(np.argmax(score))
    # slow down near the goal, to no less than the slowest arc's speed (a slow arc, the only
    # one clear of something just ahead, slowed down again had crawled the last centimetres
    # at 8 mm/s and run out of the navigator's patience); scaling v and w together keeps the
    # checked arc (same curvature)
    scale = min(1.0, max(dist / config.max_v, float(v[0] / v[best])))
    return float(v[best] * scale), float(w[best] * scale)


def turn_to_heading(yaw: float, heading: float, max_angular: float, tolerance: float,
                    gain: float = 1.5, min_angular: float = 0.15) -> tuple[float, bool]:
    """Turn-in-place rate toward ``heading`` from ``yaw`` (rad); (rate, aligned).

    A proportional turn along the shorter way, limited to ``max_angular`` and at least
    ``min_angular`` (so friction does not stall it short); ``aligned`` (and rate 0) once the
    error is within ``tolerance``.
    """
    if not (math.isfinite(yaw) and math.isfinite(heading)):
        raise ValueError(f'yaw {yaw} and heading {heading} must be finite')
    if not 0 < min_angular <= max_angular or tolerance <= 0 or gain <= 0:
        raise ValueError(f'need 0 < min_angular <= max_angular and tolerance, gain > 0, got '
                         f'{min_angular}, {max_angular}, {tolerance}, {gain}')
    error = math.atan2(math.sin(heading - yaw), math.cos(heading - yaw))
    if abs(error) <= tolerance:
        return 0.0, True
    rate = min(max_angular, max(min_angular, gain * abs(error)))
    return math.copysign(rate, error), False


__all__ = ['ControllerConfig', 'arc_positions', 'local_command', 'nearest_beam', 'scan_points',
           'scan_to_base', 'segment_clear', 'turn_to_heading']
