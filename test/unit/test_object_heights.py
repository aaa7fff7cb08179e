"""Measured object height as category evidence: the height table and its likelihood."""
import math

import numpy as np
import pybullet as p
import pytest
import torch

from embodied_aif.models.object_model import (
    CATEGORY_HEIGHTS,
    ObjectClassifier,
    ObjectModel,
    ObjectModelConfig,
)
from embodied_aif.models.scene_beliefs import height_likelihood
from embodied_aif.models.segmentation import CameraIntrinsics, Cluster, look_at
from embodied_aif.sim.objects import sample_object, spawn_object
from embodied_aif.sim.scenario import CATEGORIES


def _heights(category: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Heights (AABB, m) of ``n`` sampled instances of a category, spawned upright."""
    client = p.connect(p.DIRECT)
    try:
        out = []
        for i in range(n):
            body = spawn_object(sample_object(category, i, rng), client, (0.0, 0.0, 1.0), 0.0)
            lo, hi = p.getAABB(body, -1, physicsClientId=client)
            out.append(hi[2] - lo[2])
            p.removeBody(body, physicsClientId=client)
        return np.asarray(out)
    finally:
        p.disconnect(client)


def test_category_heights_cover_the_generators():
    # every category of the simulator has a range, and sampled instances fall inside it
    # (2 mm of collision margin) while filling most of it (the table is not loose)
    assert set(CATEGORIES) <= set(CATEGORY_HEIGHTS)
    rng = np.random.default_rng(3)
    for category in CATEGORIES:
        low, high = CATEGORY_HEIGHTS[category]
        h = _heights(category, 24, rng)
        assert np.all(h >= low - 0.002) and np.all(h <= high + 0.002), (category, h)
        assert h.min() < low + 0.35 * (high - low) and h.max() > high - 0.35 * (high - low), \
            (category, h.min(), h.max())


def test_height_likelihood_matches_hand_computed_densities():
    # one category on (0.1, 0.2) m and one of unknown size; h = 0.15 lies deep inside the
    # range, so the smoothed uniform is 1 / 0.1 there to many digits
    sigma, partial, outlier, hmax = 0.005, 0.2, 0.02, 0.5
    lik = height_likelihood([0.15], [(0.1, 0.2), None], sigma, partial, outlier, hmax)[0]
    inside = (1 - outlier) * ((1 - partial) * 10.0 + partial * math.log(0.2 / 0.15) / 0.1) \
        + outlier / hmax
    unknown = (1 - outlier) / hmax + outlier / hmax
    np.testing.assert_allclose(lik, np.array([inside, unknown]) / (inside + unknown),
                               rtol=1e-6)
    # below the range only the partial view explains it: log(high / low) / width
    lik = height_likelihood([0.03], [(0.1, 0.2), None], sigma, partial, outlier, hmax)[0]
    below = (1 - outlier) * partial * math.log(2.0) / 0.1 + outlier / hmax
    np.testing.assert_allclose(lik[0] / lik[1], below / unknown, rtol=1e-6)
    # tempered: the normalised density ratio to the power of the temperature
    half = height_likelihood([0.15], [(0.1, 0.2), None], sigma, partial, outlier, hmax,
                             temperature=0.5)[0]
    np.testing.assert_allclose(half[0] / half[1], math.sqrt(inside / unknown), rtol=1e-6)


def test_height_likelihood_is_one_sided_normalised_and_never_rules_out():
    names = ('jenga', 'lego', 'mug', 'bottle')
    ranges = [CATEGORY_HEIGHTS[n] for n in names]
    lik = height_likelihood([0.025, 0.05, 0.09, 0.18], ranges)
    np.testing.assert_allclose(lik.sum(axis=1), 1.0)
    # each height points at the category whose range holds it
    assert list(lik.argmax(axis=1)) == [0, 1, 2, 3]
    # occlusion only lowers a measurement: for a bottle (14-22 cm) a cluster 5 cm lower than
    # its range is far more likely than one 5 cm higher (which only a merge can explain);
    # densities against a category of unknown size, whose density is flat
    below, above = height_likelihood([0.09, 0.27], [CATEGORY_HEIGHTS['bottle'], None])
    assert below[0] / below[1] > 10.0 * above[0] / above[1]
    # the outlier floor: no height makes a category impossible
    assert np.all(lik > 1e-3)
    # temperature 0: no evidence
    np.testing.assert_allclose(height_likelihood([0.025, 0.3], ranges, temperature=0.0), 0.25)
    per_row = height_likelihood([0.025, 0.025], ranges, temperature=[1.0, 0.0])
    assert per_row[0, 0] > 0.5 and np.allclose(per_row[1], 0.25)


@pytest.mark.parametrize('kwargs, match', [
    ({'heights': [np.nan]}, 'heights'),
    ({'ranges': [(0.2, 0.1)]}, 'category 0'),
    ({'ranges': []}, 'at least one'),
    ({'sigma': 0.0}, 'sigma'),
    ({'temperature': 1.5}, 'temperature'),
])
def test_height_likelihood_rejects_bad_input(kwargs, match):
    args = {'heights': [0.1], 'ranges': [(0.05, 0.15)]} | kwargs
    with pytest.raises(ValueError, match=match):
        height_likelihood(**args)


def test_classifier_observe_fuses_the_measured_height():
    torch.manual_seed(0)
    model = ObjectModel(ObjectModelConfig(categories=('jenga', 'bottle'), crop_size=16,
                                          input_size=16, channels=(8, 16), hidden=32,
                                          shape_dim=4, pose_dim=2))
    clf = ObjectClassifier(model, ('jenga', 'bottle', 'unknown'))
    intr = CameraIntrinsics.from_fov(50, 40, np.deg2rad(60.0))
    cam = look_at([-0.5, 0.0, 0.4], [0.0, 0.0, 0.0])
    rgb = np.zeros((40, 50, 3), np.uint8)
    depth = np.full((40, 50), 1.0, np.float32)
    rgb[15:25, 20:30] = 180
    depth[15:25, 20:30] = 0.6
    pixels = np.flatnonzero(((np.arange(40)[:, None] >= 15) & (np.arange(40)[:, None] < 25)
                             & (np.arange(50) >= 20) & (np.arange(50) < 30)).ravel())

    def cluster(height):
        return Cluster(centroid=np.zeros(3), center=np.array([0.0, 0.0, height / 2]),
                       extent=np.array([0.05, 0.05, height]), colour=np.full(3, 0.7),
                       pixel_indices=pixels, n_points=200)

    clusters = [cluster(0.025), cluster(0.18)]   # the same crop, two measured heights
    off = clf.observe(rgb, depth, intr, cam, clusters, height_temperature=0.0)['likelihoods']
    np.testing.assert_allclose(off[0], off[1])
    on = clf.observe(rgb, depth, intr, cam, clusters)['likelihoods']
    np.testing.assert_allclose(on.sum(axis=1), 1.0)
    # the flat cluster moves toward jenga, the tall one toward bottle, relative to the crop
    assert on[0, 0] / on[0, 1] > 3.0 * off[0, 0] / off[0, 1]
    assert on[1, 1] / on[1, 0] > 3.0 * off[1, 1] / off[1, 0]
    # the unknown category (no height range, no classifier column) keeps some probability
    assert np.all(on[:, 2] > 0.0)
