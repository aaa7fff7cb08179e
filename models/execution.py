"""Plan execution without ROS: the task guard and the realised-cost meter of the executive.

TaskGuard follows the task's automaton along what actually happened (the label sets of the
states the robot really reached) and says, before a step is taken, whether the trace would
still be able to satisfy the task. CostMeter integrates the realised cost of execution:
time from the clock, energy from base travel and arm joint motion, risk from closeness to
obstacles and from collisions. Both are plain state machines fed by the node's callbacks.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.models.ltl import to_dfa

COST_OBJECTIVES = ('time', 'energy', 'risk')


class TaskGuard:
    """The task's DFA run on the executed trace; checks steps before they are taken."""

    def __init__(self, formula: str):
        self.dfa = to_dfa(formula)  # LTLSyntaxError names the position of a syntax error
        self.formula = formula
        self.state = self.dfa.initial
        self.trace: list[frozenset] = []

    @property
    def started(self) -> bool:
        """Whether the first state of the trace has been read."""
        return bool(self.trace)

    @property
    def accepted(self) -> bool:
        """Whether the trace so far satisfies the task."""
        return self.started and bool(self.dfa.accepting[self.state])

    @property
    def live(self) -> bool:
        """Whether some continuation of the trace can still satisfy the task."""
        return self.dfa.is_live(self.state)

    def advance(self, labels: Iterable[str]) -> None:
        """Read the labels of the state the robot is now in."""
        labels = frozenset(labels)
        self.state = self.dfa.step(self.state, labels)
        self.trace.append(labels)

    def check(self, steps_labels: Sequence[Iterable[str]]) -> tuple[int, str]:
        """Where a sequence of steps (labels after each) would make the task unsatisfiable.

        Returns (-1, '') when every prefix stays live and the last step satisfies the task;
        otherwise the index of the first offending step and the reason (index len(steps)
        when the steps end without satisfying the task).
        """
        q = self.state
        for k, labels in enumerate(steps_labels):
            q = self.dfa.step(q, frozenset(labels))
            if not self.dfa.is_live(q):
                return k, (f'step {k} would reach {sorted(labels)}, after which '
                           f'{self.formula!r} can no longer hold')
        if not self.dfa.accepting[q]:
            return len(steps_labels), f'the steps end before {self.formula!r} holds'
        return -1, ''


@dataclass
class CostMeter:
    """Running totals of realised energy and risk; time comes from the caller's clock.

    energy = metres driven by the base + arm_energy_per_rad * radians travelled by the arm
    joints; risk = integral over time of max(0, 1 - d / risk_distance) for the nearest
    obstacle distance d, + collision_risk per collision.
    """

    risk_distance: float = 0.5
    arm_energy_per_rad: float = 0.2
    collision_risk: float = 1.0
    energy: float = 0.0
    risk: float = 0.0
    _xy: np.ndarray | None = field(default=None, repr=False)
    _q: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for name in ('risk_distance', 'arm_energy_per_rad', 'collision_risk'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == 'risk_distance' and value == 0):
                raise ValueError(f'{name} must be finite and >= 0 (risk_distance > 0), '
                                 f'got {value}')

    def on_base(self, x: float, y: float) -> None:
        """A new base position (odometry); jumps over 1 m are ignored as resets."""
        xy = np.array([x, y], dtype=float)
        if not np.isfinite(xy).all():
            return
        if self._xy is not None:
            step = float(np.linalg.norm(xy - self._xy))
            if step < 1.0:
                self.energy += step
        self._xy = xy

    def on_joints(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """New arm joint positions (radians); travel adds to energy."""
        for name, q in zip(names, positions):
            if not math.isfinite(q):
                continue
            last = self._q.get(name)
            if last is not None:
                self.energy += self.arm_energy_per_rad * abs(q - last)
            self._q[name] = q

    def on_clearance(self, distance: float, dt: float) -> None:
        """Nearest obstacle distance over an interval dt (s) of the clock."""
        if math.isfinite(distance) and math.isfinite(dt) and dt > 0:
            self.risk += max(0.0, 1.0 - distance / self.risk_distance) * dt

    def on_collision(self) -> None:
        """A collision happened."""
        self.risk += self.collision_risk

    def snapshot(self, now: float) -> tuple[float, float, float]:
        """The totals at time `now` (pass it back to since())."""
        return now, self.energy, self.risk

    def since(self, snapshot: tuple[float, float, float], now: float) -> list[float]:
        """Realised (time, energy, risk) since a snapshot."""
        t0, e0, r0 = snapshot
        return [max(0.0, now - t0), self.energy - e0, self.risk - r0]


def parse_target(action: str, target: str) -> tuple[str, str]:
    """Split a plan step's target into (object or place, place) for pick/place/move steps.

    move 'place_3' -> ('place_3', 'place_3'); pick 'mug' -> ('mug', ''); place
    'mug@place_3' -> ('mug', 'place_3'). Raises ValueError naming a malformed target.
    """
    if action == 'move':
        return target, target
    if action == 'pick':
        if not target or '@' in target:
            raise ValueError(f'pick target must be an object id, got {target!r}')
        return target, ''
    if action == 'place':
        obj, sep, place = target.partition('@')
        if not sep or not obj or not place:
            raise ValueError(f"place target must be '<object>@<place>', got {target!r}")
        return obj, place
    raise ValueError(f"unknown plan action {action!r} (known: move, pick, place)")


def place_id(name: str) -> int:
    """Cognitive-map place id of a place name 'place_<id>'; ValueError otherwise."""
    prefix, _, number = name.rpartition('_')
    if prefix != 'place' or not number.isdigit():
        raise ValueError(f"not a cognitive-map place name (place_<id>): {name!r}")
    return int(number)
