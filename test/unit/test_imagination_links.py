"""Imagined straight trips between places: actions, matching, judgements (no ROS)."""
import math

import numpy as np
import pytest
import torch

from embodied_aif.models import imagination as im
from embodied_aif.models import world_model as wm


def model(objective='contrastive'):
    torch.manual_seed(0)
    return wm.WorldModel(wm.preset(objective, 'tiny')).eval()


def views_at(m, poses, seed=0):
    """A view memory with random images and features at the given (x, y, yaw) poses."""
    rng = np.random.default_rng(seed)
    n = len(poses)
    imgs = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    gen = torch.Generator().manual_seed(seed)
    return im.ViewMemory(torch.randn(n, m.config.feature_dim, generator=gen), imgs,
                         np.asarray(poses, dtype=float))


@pytest.mark.parametrize('pose, target', [((0, 0, 0), (2.0, 0.0)), ((1, 1, 0.3), (-1.5, 2.2)),
                                          ((0, 0, math.pi), (0.1, -3.0))])
def test_straight_actions_turn_then_drive_to_the_target(pose, target):
    acts = im.straight_actions(pose, target, 0.5, 0.6, 1.2)
    end = im.dead_reckon(pose, acts, 0.5)[-1]
    assert np.allclose(end[:2], target, atol=1e-5)
    bearing = math.atan2(target[1] - pose[1], target[0] - pose[0])
    turn = abs(math.remainder(bearing - pose[2], 2 * math.pi))
    n_turn = int(np.sum(acts[:, 0] == 0))
    assert n_turn == math.ceil(turn / 0.6 - 1e-9)
    assert np.all(np.abs(acts[:, 1]) <= 1.2 + 1e-6) and np.all(acts[:, 0] <= 0.6 + 1e-6)
    assert np.all(acts[n_turn:, 1] == 0) and np.all(acts[:n_turn, 0] == 0)
    dist = math.hypot(target[0] - pose[0], target[1] - pose[1])
    assert len(acts) - n_turn == math.ceil(dist / 0.3 - 1e-9)


def test_straight_actions_edge_cases():
    assert im.straight_actions((1, 1, 0), (1, 1)).shape == (0, 2)
    with pytest.raises(ValueError, match='must be > 0'):
        im.straight_actions((0, 0, 0), (1, 0), action_period=0.0)


def test_state_from_features_round_trip_and_shape_check():
    m = model()
    feats = torch.randn(3, m.config.feature_dim)
    assert torch.equal(im.state_from_features(m, feats).features, feats)
    with pytest.raises(ValueError, match='features must be'):
        im.state_from_features(m, torch.zeros(2, 5))


def test_view_match_is_the_infonce_softmax_with_a_none_option():
    m = model()
    views = views_at(m, [(0, 0, 0), (1, 0, 0), (2, 0, 0)])
    states = torch.randn(4, m.config.feature_dim)
    p = im.view_match(m, views, states)
    with torch.no_grad():  # computed independently: f(o_v, s) and a null logit at cosine 0.7
        h = torch.nn.functional.normalize(m.obs_head(m.encoder(wm.preprocess(views.images))),
                                          dim=-1)
        g = torch.nn.functional.normalize(m.state_head(states), dim=-1)
        logits = (g @ h.T) / m.config.nce_temperature
    null = torch.full((4, 1), im.NULL_COSINE / m.config.nce_temperature)
    expect = torch.softmax(torch.cat([logits, null], 1), 1)[:, :3]
    assert torch.allclose(p, expect, atol=1e-5)
    assert torch.all(p.sum(1) < 1)


def test_judge_link_starts_from_the_view_that_faces_the_target():
    m = model()
    views = views_at(m, [(0, 0, 0), (0.2, 0, math.pi / 2), (0, 0.1, math.pi),
                         (0, 2.0, 0), (0.3, 2.2, 1.0), (5, 5, 0)])
    j = im.judge_link(m, views, (0, 0, 0), (0, 2.0), a=3, b=7)
    assert (j.a, j.b, j.start_view) == (3, 7, 1)
    assert np.allclose(j.start, views.poses[1])
    h = len(j.actions)
    assert j.arrive.shape == j.along.shape == (h,) and j.imagined_xy.shape == (h, 2)
    assert np.allclose(j.reckoned[-1, :2], (0.0, 2.0), atol=1e-5)
    assert np.all((j.arrive >= 0) & (j.arrive <= 1)) and np.all(j.along <= 1)
    # the confidence is the mean arrival probability where odometry puts the robot near b
    near = np.linalg.norm(j.reckoned[:, :2] - (0.0, 2.0), axis=1) <= 1.0
    assert math.isclose(j.confidence, float(j.arrive[near].mean()), rel_tol=1e-6)
    assert j.free(0.0) and j.free(j.confidence) and not j.free(j.confidence + 1e-3)
    # no view near b: nothing can say the robot arrives there
    far = im.judge_link(m, views, (0, 0, 0), (0, -2.0))
    assert far.start_view >= 0 and np.all(far.arrive == 0) and far.confidence == 0.0


def test_judge_link_without_a_view_toward_the_target_has_no_confidence():
    m = model()
    views = views_at(m, [(0, 0, 0), (3, 0, 0)])
    j = im.judge_link(m, views, (0, 0, 0), (-3.0, 0.0))  # the only view faces away
    assert j.start_view == -1 and j.confidence == 0.0 and len(j.actions) == 0
    assert not j.free(0.01)
    with pytest.raises(ValueError, match='no camera views'):
        im.judge_link(m, im.empty_views(m), (0, 0, 0), (1, 0))
    with pytest.raises(ValueError, match='samples'):
        im.judge_link(m, views, (0, 0, 0), (3, 0), samples=-1)


def test_judge_link_sampled_rollouts_are_seeded_and_differ_from_the_mean():
    m = model()
    views = views_at(m, [(0, 0, 0), (1.5, 0, 0), (1.5, 0.3, math.pi)])
    mean = im.judge_link(m, views, (0, 0, 0), (1.5, 0))
    again = im.judge_link(m, views, (0, 0, 0), (1.5, 0))
    assert np.array_equal(mean.arrive, again.arrive)
    one = im.judge_link(m, views, (0, 0, 0), (1.5, 0), samples=8,
                        generator=torch.Generator().manual_seed(3))
    two = im.judge_link(m, views, (0, 0, 0), (1.5, 0), samples=8,
                        generator=torch.Generator().manual_seed(3))
    assert np.array_equal(one.arrive, two.arrive)
    assert not np.allclose(one.along, mean.along)


def test_imagined_progress_compares_the_model_with_odometry():
    acts = np.array([[0.0, 1.0], [0.6, 0.0], [0.6, 0.0]], np.float32)
    j = im.LinkJudgement(0, 1, 0.5, np.zeros(3), np.zeros(3),
                         np.array([[0.0, 0.0], [0.15, 0.4], [0.6, -0.2]]),
                         np.array([[0.0, 0.0, 0.5], [0.3, 0.0, 0.5], [0.6, 0.0, 0.5]]),
                         0, acts, np.zeros(3))
    prog = j.imagined_progress()
    assert np.isnan(prog[0]) and np.allclose(prog[1:], [0.5, 1.0])


def test_judge_links_skips_known_and_far_pairs_and_keeps_place_ids():
    m = model()
    views = views_at(m, [(0, 0, 0), (0, 0, math.pi / 2), (2, 0, math.pi), (2, 0, math.pi / 2),
                         (0, 2, -math.pi / 2), (2, 2, math.pi), (9, 9, 0)])
    places = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 0], [9, 9, 0]], float)
    proposals, judged = im.judge_links(m, views, places, places=[0, 1, 2, 3, 4],
                                       known=[(1, 0)], max_distance=3.0, threshold=0.0)
    pairs = {tuple(sorted((j.a, j.b))) for j in judged}
    assert (0, 1) not in pairs and not any(4 in p for p in pairs)
    assert pairs == {(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert len(judged) == 2 * len(pairs)  # both directions imagined
    assert {tuple(sorted((p.a, p.b))) for p in proposals} == pairs  # threshold 0: all
    confs = [p.confidence for p in proposals]
    assert confs == sorted(confs, reverse=True)
    for p in proposals:  # each pair is proposed with its more confident direction
        assert p.confidence == max(j.confidence for j in judged
                                   if {j.a, j.b} == {p.a, p.b})
    strict, _ = im.judge_links(m, views, places, places=[0, 1, 2, 3], threshold=1.01)
    assert strict == []
    with pytest.raises(ValueError, match='has no pose'):
        im.judge_links(m, views, places, places=[0, 7])
    with pytest.raises(ValueError, match='place_poses must be'):
        im.judge_links(m, views, np.zeros(4))


def test_view_posteriors_recompute_what_filtering_computed():
    m = model()
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    acts = rng.normal(size=(5, 2)).astype(np.float32)
    prev = np.zeros_like(acts)
    prev[1:] = acts[:-1]
    post, _ = wm.observe(m, imgs[None], prev[None], sample=False)
    views = im.ViewMemory(post.features[0], imgs, np.zeros((5, 3)))
    q = im.view_posteriors(m, views)
    assert torch.allclose(q.mean, post.mean[0], atol=1e-5)
    assert torch.allclose(q.std, post.std[0], atol=1e-5)


def test_kl_match_is_a_softmax_of_minus_kl_over_the_views():
    m = model()
    gen = torch.Generator().manual_seed(1)
    k = m.config.stoch
    post = wm.State(torch.zeros(3, m.config.deter), torch.zeros(3, k),
                    torch.randn(3, k, generator=gen), 0.2 + torch.rand(3, k, generator=gen))
    prior = wm.State(torch.zeros(2, m.config.deter), torch.zeros(2, k),
                     torch.stack([post.mean[1], post.mean[2] + 0.5]),
                     torch.stack([post.std[1], post.std[2]]))
    p = im.kl_match(m, post, prior, temperature=2.0)
    kl = torch.zeros(2, 3)  # independently, one pair at a time
    for i in range(2):
        for j in range(3):
            dist_q = torch.distributions.Normal(post.mean[j], post.std[j])
            dist_p = torch.distributions.Normal(prior.mean[i], prior.std[i])
            kl[i, j] = torch.distributions.kl_divergence(dist_q, dist_p).sum()
    assert torch.allclose(p, torch.softmax(-kl / 2.0, 1), atol=1e-5)
    assert int(p[0].argmax()) == 1  # the prior equal to view 1's posterior picks view 1
    assert torch.allclose(p.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match='temperature'):
        im.kl_match(m, post, prior, temperature=0.0)


def test_judge_link_match_modes():
    m = model()
    views = views_at(m, [(0, 0, 0), (1.5, 0, 0), (1.5, 0.3, math.pi)])
    kl = im.judge_link(m, views, (0, 0, 0), (1.5, 0), match='kl')
    obs = im.judge_link(m, views, (0, 0, 0), (1.5, 0), match='observation')
    assert kl.start_view == obs.start_view == 0 and np.array_equal(kl.actions, obs.actions)
    assert not np.allclose(kl.arrive, obs.arrive)
    with pytest.raises(ValueError, match='match must be'):
        im.judge_link(m, views, (0, 0, 0), (1.5, 0), match='pixels')


# ------------------------------------------------------------------ toy world with a door
WALL_X, DOOR = 2.0, (1.5, 2.5)


class _PositionPosterior(torch.nn.Module):
    """q(z | h, e): z = the (x, y) in h, std softplus(-3) + min_std."""

    def forward(self, x):
        return torch.cat([x[..., :2], torch.full_like(x[..., :2], -3.0)], -1)


class DoorModel(wm.WorldModel):
    """Exact model of two rooms split by a wall at x = 2 with a doorway (open or shut).

    h = (x, y, yaw), z = (x, y); the prior drives the unicycle for 0.5 s and stops at the
    wall unless the door is open and the robot is in the doorway.
    """

    def __init__(self, door_open: bool):
        super().__init__(wm.preset('contrastive', 'tiny', deter=3, stoch=2))
        self.door_open = door_open
        self.post_net = _PositionPosterior()

    def img_step(self, state, action, sample=False, generator=None):
        x, y, yaw = (t.clone() for t in state.deter.unbind(-1))
        v, w = action.unbind(-1)
        for _ in range(20):
            yaw = yaw + w * 0.025
            nx, ny = x + v * 0.025 * torch.cos(yaw), y + v * 0.025 * torch.sin(yaw)
            crossing = (x - WALL_X) * (nx - WALL_X) <= 0
            through = self.door_open & (ny > DOOR[0]) & (ny < DOOR[1])
            stop = crossing & ~through & (nx != x)
            x, y = torch.where(stop, x, nx), torch.where(stop, y, ny)
        pos = torch.stack([x, y], -1)
        std = torch.full_like(pos, 0.1 + float(torch.nn.functional.softplus(torch.tensor(-3.0))))
        return wm.State(torch.stack([x, y, yaw], -1), pos, pos, std)


def door_views(model, spots):
    """Views at each spot in four headings: features [x, y, yaw, x, y]."""
    poses = np.array([(x, y, yaw) for x, y in spots for yaw in (0, np.pi / 2, np.pi, -np.pi / 2)])
    feats = torch.tensor(np.c_[poses, poses[:, :2]], dtype=torch.float32)
    imgs = np.zeros((len(poses), 16, 16, 3), np.uint8)
    return im.ViewMemory(feats, imgs, poses)


@pytest.mark.parametrize('door_open', [True, False])
def test_toy_world_imagines_the_trip_through_an_open_door_only(door_open):
    m = DoorModel(door_open).eval()
    spots = [(0.5, 2.0), (3.5, 2.0), (0.5, 0.5), (3.5, 0.5),   # the places
             (1.8, 2.0), (1.8, 0.5), (2.2, 2.0), (2.2, 0.5)]   # and by the wall
    views = door_views(m, spots)
    through = im.judge_link(m, views, (0.5, 2.0, 0.0), (3.5, 2.0))   # across the doorway
    wall = im.judge_link(m, views, (0.5, 0.5, 0.0), (3.5, 0.5))      # across the wall
    assert wall.confidence < 0.05 and wall.imagined_progress()[-1] < 0.5
    if door_open:
        assert through.confidence > 0.6 and through.arrive[-1] > 0.99
        assert np.allclose(through.imagined_progress()[-1], 1.0, atol=0.05)
    else:  # stuck at the shut door, with the views at (1.8, 2)
        assert through.confidence < 0.05 and through.imagined_progress()[-1] < 0.5
    places = np.array([[0.5, 2.0, 0], [3.5, 2.0, 0], [0.5, 0.5, 0], [3.5, 0.5, 0]])
    links, judged = im.judge_links(m, views, places, known=[(0, 2), (1, 3)], threshold=0.5)
    assert {(min(p.a, p.b), max(p.a, p.b)) for p in links} == ({(0, 1)} if door_open else set())
    assert len(judged) == 2 * 4  # pairs (0, 1), (0, 3), (1, 2), (2, 3), both ways
