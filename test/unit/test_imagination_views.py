"""Camera views for goal images and imagined links keyed by map place ids (no ROS)."""
import math

import numpy as np
import pytest
import torch

from embodied_aif.models import imagination as im
from embodied_aif.models import world_model as wm


def model(objective='contrastive'):
    torch.manual_seed(0)
    return wm.WorldModel(wm.preset(objective, 'tiny')).eval()


def images(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_fit_image_keeps_the_centre_square_and_the_mean_colour():
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 8:56] = 200  # the centre square
    out = im.fit_image(img, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and np.all(out == 200)
    ramp = np.repeat(np.arange(40, dtype=np.uint8)[None, :, None], 40, 0).repeat(3, 2)
    small = im.fit_image(ramp, 16)  # 2.5 source pixels per output pixel
    assert math.isclose(small.mean(), ramp.mean(), abs_tol=0.6)
    assert np.all(np.diff(small[0, :, 0].astype(int)) > 0)
    with pytest.raises(ValueError, match='image must be'):
        im.fit_image(np.zeros((4, 4)), 8)


def test_filter_step_equals_filtering_the_whole_sequence():
    m = model()
    imgs, acts = images(4), np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)
    prev = np.zeros_like(acts)
    prev[1:] = acts[:-1]
    post, _ = wm.observe(m, imgs[None], prev[None], sample=False)
    state = None
    for t in range(4):
        state = im.filter_step(m, state, prev[t], imgs[t])
    assert torch.allclose(state.features[0], post.features[0, -1], atol=1e-5)


def test_remember_view_covers_poses_and_headings_not_time():
    m = model()
    feats, imgs = torch.randn(5, m.config.feature_dim), images(5)
    mem = im.empty_views(m)
    mem = im.remember_view(mem, feats[0], imgs[0], (0, 0, 0), spacing=0.5)
    same = im.remember_view(mem, feats[1], imgs[1], (0.2, 0, 0.1), spacing=0.5)
    assert same is mem  # seen from nearly the same pose: nothing new
    turned = im.remember_view(mem, feats[1], imgs[1], (0.2, 0, math.pi / 2), spacing=0.5)
    assert turned.size == 2  # another heading is another view
    replaced = im.remember_view(turned, feats[2], imgs[2], (0.1, 0, 0), spacing=0.5,
                                replace=True)
    assert replaced.size == 2 and np.array_equal(replaced.images[-1], imgs[2])
    assert np.allclose(replaced.poses[0], (0.2, 0, math.pi / 2))
    full = im.empty_views(m)
    for k in range(5):
        full = im.remember_view(full, feats[k], imgs[k], (k, 0, 0), capacity=3)
    assert full.size == 3 and np.allclose(full.poses[:, 0], [2, 3, 4])  # oldest dropped
    with pytest.raises(ValueError, match='poses must be'):
        im.ViewMemory(feats[:2], imgs[:2], np.zeros((3, 3)))


@pytest.mark.parametrize('match', ['state', 'embedding'])
def test_view_place_preference_picks_the_place_of_the_matching_view(match):
    m = model()
    imgs = images(6)
    state, views = None, im.empty_views(m)
    poses = [(0, 0, 0), (0.2, 0, 2), (3, 0, 0), (3, 0.2, 2), (6, 0, 0), (20, 20, 0)]
    for img, pose in zip(imgs, poses):
        state = im.filter_step(m, state, (0.3, 0.0), img)
        views = im.remember_view(views, state.features[0], img, pose)
    places = np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 0.0], [9.0, 0.0]])
    out = im.view_place_preference(m, views, imgs[3], places, place_radius=1.0, match=match)
    assert math.isclose(out['preference'].sum(), 1.0, rel_tol=1e-9)
    assert out['best_view'][3] == -1 and np.isinf(out['efe'][3]) and out['preference'][3] == 0
    # the view far from every place (index 5) belongs to none
    assert 5 not in out['best_view']
    # a place's EFE is the least EFE of its views
    assert math.isclose(out['efe'][1], min(out['view_efe'][2], out['view_efe'][3]))
    if match == 'embedding':  # the goal is view 3's image: cosine 1, the best there is
        assert int(np.argmin(out['view_efe'])) == 3 and int(np.argmax(out['preference'])) == 1
        # the goal is where that view was seen from, not the place's centre
        assert out['place'] == 1 and np.allclose(out['goal_pose'], poses[3])
    assert np.allclose(out['goal_pose'], views.poses[out['best_view'][out['place']]])
    with pytest.raises(ValueError, match='no camera views'):
        im.view_place_preference(m, im.empty_views(m), imgs[0], places, 1.0)
    with pytest.raises(ValueError, match='goal image must have shape'):
        im.view_place_preference(m, views, imgs[0][:8], places, 1.0)
    with pytest.raises(ValueError, match='match must be'):
        im.view_place_preference(m, views, imgs[0], places, 1.0, match='pixels')


def test_imagined_links_use_place_ids_and_skip_known_edges():
    m = model()
    imgs = images(3)
    state, views = None, {}
    ids = [4, 9, 2]
    poses = [(0, 0, 0), (1.5, 0, 0), (0, 1.5, math.pi / 2)]
    for k, img, pose in zip(ids, imgs, poses):
        state = im.filter_step(m, state, (0.3, 0.0), img)
        views[k] = (state, img, np.array(pose, float))
    links = im.imagined_links(m, views, known=[(9, 4)], threshold=0.0,
                              candidates=im.candidate_actions(horizon=4, turn_steps=2))
    pairs = {(p.a, p.b) for p in links}
    assert pairs and pairs <= {(a, b) for a in ids for b in ids if a != b}
    assert not pairs & {(4, 9), (9, 4)}
    assert all(0.0 <= p.confidence <= 1.0 for p in links)
    assert im.imagined_links(m, {4: views[4]}) == []
