"""Random wall and floor looks: the distractor textures of goal images and of training data.

One generator family for every place that retextures a world: the goal-image benchmark renders
its distractor goal images with it, and trajectory collection (``--retextured``) renders a
second view of each recorded step with it, for training a place code that ignores what the
walls and floors look like.

A draw gives every wall body and every floor body of the world (``World.wall_bodies`` then
``World.floor_bodies``, in room order) its own texture, drawn uniformly from
``sim.world.TEXTURES``, and its own colour, each RGB channel uniform in [0.2, 1.0].
:class:`Retexturer` switches a simulation between its own looks and a draw without rebuilding
anything (texture files are loaded once per physics client), so the same camera pose can be
rendered both ways.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pybullet as p

from embodied_aif.sim.objects import DATA
from embodied_aif.sim.world import TEXTURES

MIN_CHANNEL = 0.2
MAX_CHANNEL = 1.0


@dataclass(frozen=True)
class SurfaceLook:
    """How one body looks: RGBA colour and a texture file name (pybullet_data) or None."""

    rgba: tuple
    texture: str | None


def surface_bodies(world) -> list[int]:
    """The bodies a draw retextures, in draw order: every room's walls, then floors."""
    return list(world.wall_bodies.values()) + list(world.floor_bodies.values())


def random_looks(world, rng: np.random.Generator) -> dict[int, SurfaceLook]:
    """A random look per wall and floor body: texture from TEXTURES, channels in [0.2, 1]."""
    looks = {}
    for body in surface_bodies(world):
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
        rgb = rng.uniform(MIN_CHANNEL, MAX_CHANNEL, 3)
        looks[body] = SurfaceLook((*(float(c) for c in rgb), 1.0), texture)
    return looks


def world_looks(world) -> dict[int, SurfaceLook]:
    """The looks the world was built with (``World.looks``), per wall and floor body."""
    looks = {}
    for room, body in world.wall_bodies.items():
        look = world.looks[room]
        looks[body] = SurfaceLook(tuple(look.wall_rgba), look.wall_texture)
    for room, body in world.floor_bodies.items():
        look = world.looks[room]
        looks[body] = SurfaceLook(tuple(look.floor_rgba), look.floor_texture)
    return looks


class Retexturer:
    """Switch the wall and floor looks of a simulation (physics client) back and forth.

    ``apply(looks)`` sets the given looks, ``restore()`` the world's own; ``swapped(looks)``
    is a context manager doing both. Texture files are loaded once per client and reused.
    """

    def __init__(self, sim):
        self.client = sim.client
        self.world = sim.world
        self.original = world_looks(sim.world)
        self._textures: dict[str, int] = {}

    def texture_id(self, name: str | None) -> int:
        """PyBullet texture id of a texture file (-1: no texture)."""
        if name is None:
            return -1
        if name not in self._textures:
            self._textures[name] = p.loadTexture(str(DATA / name), physicsClientId=self.client)
        return self._textures[name]

    def apply(self, looks: dict[int, SurfaceLook]) -> None:
        """Give each body in `looks` its colour and texture."""
        known = set(self.original)
        for body, look in looks.items():
            if body not in known:
                raise ValueError(f'body {body} is not a wall or floor of this world '
                                 f'(known: {sorted(known)})')
            p.changeVisualShape(body, -1, rgbaColor=list(look.rgba),
                                textureUniqueId=self.texture_id(look.texture),
                                physicsClientId=self.client)

    def restore(self) -> None:
        """Put the world's own looks back."""
        self.apply(self.original)

    @contextlib.contextmanager
    def swapped(self, looks: dict[int, SurfaceLook]):
        """Within the block the world wears `looks`; its own looks come back after."""
        self.apply(looks)
        try:
            yield self
        finally:
            self.restore()


def retexture(sim, rng: np.random.Generator) -> dict[int, SurfaceLook]:
    """Give every wall and floor of `sim` a random look (for good); return the draw."""
    looks = random_looks(sim.world, rng)
    Retexturer(sim).apply(looks)
    return looks
