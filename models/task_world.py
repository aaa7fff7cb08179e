"""The task-level world from the agent's maps: places and objects -> a move/pick/place system.

Places come from the cognitive map (id, position, edges with length and confidence), objects
from the object beliefs (name, position, most probable category). Each object lies at its
nearest place. Move costs per objective follow a simple, documented cost model; they are the
prior means of the cost beliefs that execution then refines.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from embodied_aif.models.transition_system import (
    DEFAULT_OBJECTIVES,
    TransitionSystem,
    build_pick_place_system,
)


@dataclass(frozen=True)
class CostModel:
    """Prior move and manipulation costs (time s, energy, risk).

    Moving along an edge: time = length / speed, energy = length * energy_per_m,
    risk = risk_per_m * length + uncertain_edge_risk * (1 - confidence).
    """

    speed: float = 0.5
    energy_per_m: float = 1.0
    risk_per_m: float = 0.05
    uncertain_edge_risk: float = 2.0
    pick: tuple[float, float, float] = (8.0, 2.0, 0.3)
    place: tuple[float, float, float] = (6.0, 1.5, 0.2)

    def __post_init__(self):
        for name in ('speed', 'energy_per_m', 'risk_per_m', 'uncertain_edge_risk'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == 'speed' and value == 0):
                raise ValueError(f'{name} must be a finite number >= 0 (speed > 0), got {value}')

    def move(self, length: float, confidence: float) -> np.ndarray:
        """Cost vector (time, energy, risk) of moving along an edge."""
        return np.array([length / self.speed, length * self.energy_per_m,
                         self.risk_per_m * length
                         + self.uncertain_edge_risk * (1.0 - min(max(confidence, 0.0), 1.0))])


def place_name(place_id: int) -> str:
    """Name (and label suffix) of a cognitive-map place: place_<id>."""
    return f'place_{int(place_id)}'


def system_from_map(places: Mapping[int, Sequence[float]],
                    edges: Sequence[tuple[int, int, float, float]],
                    objects: Mapping[str, Sequence[float]],
                    robot_place: int, holding: str | None = None,
                    cost_model: CostModel | None = None,
                    objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> TransitionSystem:
    """Build the move/pick/place transition system of the agent's maps.

    places {id: (x, y)}; edges (a, b, length, confidence); objects {name: (x, y)}, each put
    at its nearest place; the robot at robot_place, holding `holding` if not None.
    """
    model = cost_model or CostModel()
    if tuple(objectives) != DEFAULT_OBJECTIVES:
        raise ValueError(f'the map cost model knows {DEFAULT_OBJECTIVES}, got {objectives}')
    if robot_place not in places:
        raise ValueError(f'robot place {robot_place} is not a place of the map')
    ids = sorted(places)
    xy = np.array([places[i][:2] for i in ids], dtype=float).reshape(len(ids), 2)
    where = {}
    for name, pos in objects.items():
        if name == holding:
            continue
        k = int(np.argmin(np.linalg.norm(xy - np.asarray(pos[:2], float), axis=1)))
        where[name] = place_name(ids[k])
    move_edges = [(place_name(a), place_name(b), model.move(length, conf))
                  for a, b, length, conf in edges if a in places and b in places]
    return build_pick_place_system([place_name(i) for i in ids], move_edges, where,
                                   place_name(robot_place), holding=holding,
                                   pick_cost=model.pick, place_cost=model.place,
                                   objectives=objectives)
