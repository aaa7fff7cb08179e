"""World model: RSSM training, checkpoints, trajectory collection, imagination, goal EFE."""
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from embodied_aif.models import imagination as im
from embodied_aif.models import world_model as wm
from embodied_aif.models.world_model_train import Sequences, TrainConfig, train
from embodied_aif.sim import trajectories as tr


# ------------------------------------------------------------------ synthetic data
def blob_images(pos: np.ndarray, size: int = 16) -> np.ndarray:
    """uint8 images (..., size, size, 3) of a bright blob at pos (x, y) in [0, 4) cells."""
    coords = (np.arange(size) + 0.5) * 4.0 / size
    gx = np.exp(-(coords[None, :] - pos[..., 0, None, None]) ** 2 / 0.3)
    gy = np.exp(-(coords[:, None] - pos[..., 1, None, None]) ** 2 / 0.3)
    blob = gx * gy
    img = np.stack([blob, 0.5 * blob, 1.0 - blob], -1)
    return (img * 255).astype(np.uint8)


def synthetic_sequences(episodes: int = 8, steps: int = 24, seed: int = 0) -> Sequences:
    rng = np.random.default_rng(seed)
    pos = np.zeros((episodes, steps, 2))
    acts = rng.uniform(-0.6, 0.6, (episodes, steps, 2)).astype(np.float32)
    pos[:, 0] = rng.uniform(0.5, 3.5, (episodes, 2))
    for t in range(1, steps):
        pos[:, t] = np.clip(pos[:, t - 1] + acts[:, t - 1], 0.2, 3.8)
    return Sequences(blob_images(pos), acts)


def tiny(objective: str) -> wm.WorldModelConfig:
    return wm.preset(objective, 'tiny')


# ------------------------------------------------------------------ training
@pytest.mark.parametrize(('objective', 'steps', 'lr'), [('likelihood', 20, 3e-3),
                                                      ('contrastive', 60, 6e-3)])
def test_training_decreases_the_free_energy(tmp_path, objective, steps, lr):
    torch.set_num_threads(1)
    data = synthetic_sequences()
    out = tmp_path / 'wm.pt'
    summary = train(tiny(objective), TrainConfig(steps=steps, batch=4, seq_len=8, lr=lr,
                                                 log_every=steps // 4,
                                                 checkpoint_every=steps // 2),
                    data, out)
    assert summary['finished'] and out.is_file()
    _, payload = wm.load_checkpoint(out, objective=objective)
    history = payload['extra']['history']
    assert len(history) == 4
    assert history[-1]['loss'] < history[0]['loss'] - 0.05 * abs(history[0]['loss'])
    if objective == 'contrastive':
        assert history[-1]['nce'] > history[0]['nce'] + 0.2  # the InfoNCE bound grows


def test_resume_continues_to_the_same_weights(tmp_path):
    torch.set_num_threads(1)
    data = synthetic_sequences()
    cfg = TrainConfig(steps=8, batch=4, seq_len=6, log_every=4, checkpoint_every=4)
    full, part = tmp_path / 'full.pt', tmp_path / 'part.pt'
    train(tiny('contrastive'), cfg, data, full)
    first = train(tiny('contrastive'), cfg, data, part, max_seconds=0.0)
    assert not first['finished'] and first['steps'] == 1 and not part.exists()
    second = train(tiny('contrastive'), cfg, data, part, resume=True)
    assert second['finished'] and second['steps'] == 8
    a, _ = wm.load_checkpoint(full)
    b, _ = wm.load_checkpoint(part)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(x, y, atol=1e-5), name


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = wm.WorldModel(tiny('likelihood'))
    path = tmp_path / 'ok.pt'
    wm.save_checkpoint(path, model, {'note': 'x'})
    loaded, payload = wm.load_checkpoint(path, expect=tiny('likelihood'))
    assert payload['extra']['note'] == 'x'
    feats = torch.randn(3, model.config.feature_dim)
    assert torch.allclose(model.eval().decoder(feats), loaded.decoder(feats))

    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(path.read_bytes()[:500])
    with pytest.raises(wm.CheckpointError, match=r'corrupt\.pt: corrupt'):
        wm.load_checkpoint(corrupt)
    with pytest.raises(wm.CheckpointError, match='no such checkpoint'):
        wm.load_checkpoint(tmp_path / 'missing.pt')
    with pytest.raises(wm.CheckpointError, match="objective is 'likelihood'"):
        wm.load_checkpoint(path, objective='contrastive')
    with pytest.raises(wm.CheckpointError, match='config mismatch'):
        wm.load_checkpoint(path, expect=wm.preset('likelihood', 'tiny', deter=48))

    payload = torch.load(path, weights_only=True)
    payload['version'] = 99
    torch.save(payload, tmp_path / 'v99.pt')
    with pytest.raises(wm.CheckpointError, match='v99.pt: checkpoint version 99'):
        wm.load_checkpoint(tmp_path / 'v99.pt')
    payload['version'] = wm.CHECKPOINT_VERSION
    payload['config']['deter'] = 40  # weights no longer fit the config
    torch.save(payload, tmp_path / 'mismatch.pt')
    with pytest.raises(wm.CheckpointError, match='mismatch.pt: weights do not match'):
        wm.load_checkpoint(tmp_path / 'mismatch.pt')
    torch.save({'format': 'something else'}, tmp_path / 'other.pt')
    with pytest.raises(wm.CheckpointError, match='not a world model checkpoint'):
        wm.load_checkpoint(tmp_path / 'other.pt')


@pytest.mark.parametrize('objective', wm.OBJECTIVES)
def test_shipped_weights_load_and_are_small(objective):
    path = wm.shipped_weights(objective)
    model, payload = wm.load_checkpoint(path, objective=objective)
    assert path.stat().st_size < 3_000_000
    assert payload['config'] == wm.preset(objective)
    size = model.config.image_size
    post, _ = wm.observe(model, np.zeros((1, 2, size, size, 3), np.uint8),
                         np.zeros((1, 2, 2), np.float32), sample=False)
    assert torch.isfinite(post.features).all()


def test_representation_cost_counts_layers_by_hand():
    cfg = wm.preset('contrastive', 'tiny')  # 16 px: two stride-2 convs, depth 4
    cost = wm.representation_cost(wm.WorldModel(cfg))
    conv = 8 * 8 * 4 * 3 * 16 + 4 * 4 * 8 * 4 * 16
    enc = conv + 8 * 16 * cfg.embed
    heads = (cfg.embed * cfg.hidden + cfg.hidden * cfg.proj_dim
             + cfg.feature_dim * cfg.hidden + cfg.hidden * cfg.proj_dim)
    assert cost['parts']['encoder']['macs'] == enc
    assert cost['macs'] == enc + heads
    lik = wm.representation_cost(wm.WorldModel(wm.preset('likelihood', 'tiny')))
    assert lik['parts']['decoder']['macs'] > 0 and lik['macs'] > cost['macs']


# ------------------------------------------------------------------ collection
def test_collect_writes_a_valid_manifest(tmp_path):
    cfg = tr.CollectConfig(episodes=2, steps=4, image_size=16, episodes_per_shard=1, seed=3)
    manifest = tr.collect(cfg, tmp_path)
    on_disk = json.loads((tmp_path / 'manifest.json').read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert [s['file'] for s in on_disk['shards']] == ['shard_00000.npz', 'shard_00001.npz']
    for shard in on_disk['shards']:
        assert shard['sha256'] == tr.sha256(tmp_path / shard['file'])
    data = tr.load_trajectories(tmp_path)
    assert data['images'].shape == (2, 4, 16, 16, 3) and data['images'].dtype == np.uint8
    assert data['poses'].shape == (2, 4, 3) and data['actions'].shape == (2, 4, 2)
    assert data['collisions'].dtype == bool
    assert data['images'].std() > 0  # something was rendered
    moved = np.linalg.norm(data['poses'][:, -1, :2] - data['poses'][:, 0, :2], axis=1)
    assert (moved > 0).all() or (data['actions'][:, :, 1] != 0).any()
    with pytest.raises(FileExistsError):
        tr.collect(cfg, tmp_path)
    tr.collect(cfg, tmp_path / 'again')
    again = tr.load_trajectories(tmp_path / 'again')
    for key in ('images', 'poses', 'actions', 'collisions', 'world_seeds'):
        assert np.array_equal(again[key], data[key]), key  # seeded: the same run twice
    blob = bytearray((tmp_path / 'shard_00001.npz').read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / 'shard_00001.npz').write_bytes(bytes(blob))
    with pytest.raises(tr.DatasetError, match='shard_00001.npz: checksum mismatch'):
        tr.load_trajectories(tmp_path)


def test_collect_retextured_views(tmp_path):
    base = dict(episodes=1, steps=4, image_size=16, seed=3)
    tr.collect(tr.CollectConfig(**base), tmp_path / 'plain')
    tr.collect(tr.CollectConfig(**base, retextured=True, retexture_every=2), tmp_path / 'views')
    plain = tr.load_trajectories(tmp_path / 'plain')
    views = tr.load_trajectories(tmp_path / 'views')
    assert 'images_retextured' not in plain
    alt = views['images_retextured']
    assert alt.shape == (1, 4, 16, 16, 3) and alt.dtype == np.uint8
    for key in ('images', 'poses', 'actions', 'collisions'):
        # the same run: the world's own looks come back after every retextured render
        assert np.array_equal(views[key], plain[key]), key
    diff = np.abs(alt.astype(int) - views['images'].astype(int)).mean(axis=(-3, -2, -1))
    assert (diff > 5).all()  # every step looks different retextured
    assert views['manifest']['config']['retextured'] is True
    with pytest.raises(ValueError, match='retexture_every'):
        tr.CollectConfig(retextured=True, retexture_every=0)
    with pytest.raises(ValueError, match='fov_deg'):
        tr.CollectConfig(fov_deg=180.0)


def test_training_puts_retextured_views_on_the_observation_side(tmp_path):
    torch.set_num_threads(1)
    data = synthetic_sequences(episodes=4, steps=10)
    alt = 255 - data.images  # a "retexture": every colour inverted
    cfg = wm.preset('contrastive', 'tiny', retexture=1.0)
    torch.manual_seed(0)
    model = wm.WorldModel(cfg).train()
    images, prev = data.images[:, :6], data.actions[:, :6]
    terms = wm.loss_terms(model, images, prev, torch.Generator().manual_seed(4),
                          retextured=alt[:, :6])
    # Independently: filter the true images with the same noise, score the inverted ones.
    gen = torch.Generator().manual_seed(4)
    x = wm.preprocess(images)
    embeds = model.encoder(x)
    state, posts = model.initial_state(4), []
    for t in range(6):
        state, _ = model.obs_step(state, torch.as_tensor(prev[:, t]), embeds[:, t], True, gen)
        posts.append(state)
    features = wm.stack_states(posts).features
    expected = wm.infonce(model, model.encoder(wm.preprocess(alt[:, :6])), features)
    assert float(terms['nce'].detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
    same = wm.infonce(model, embeds, features).detach()
    assert abs(float(expected.detach()) - float(same)) > 1e-3  # the views did change the objective
    model.eval()  # not training: the retextured views are ignored
    terms = wm.loss_terms(model, images, prev, torch.Generator().manual_seed(4),
                          retextured=alt[:, :6])
    plain = wm.loss_terms(model, images, prev, torch.Generator().manual_seed(4))
    assert float(terms['nce'].detach()) == pytest.approx(float(plain['nce'].detach()), abs=1e-6)
    with pytest.raises(ValueError, match='retextured images'):
        wm.loss_terms(model.train(), images, prev, retextured=alt[:, :5])
    with pytest.raises(ValueError, match='retextured images'):
        Sequences(data.images, data.actions, alt[:, :5])


def test_likelihood_filters_retextured_views_and_decodes_the_true_image():
    torch.set_num_threads(1)
    data = synthetic_sequences(episodes=3, steps=5)
    alt = 255 - data.images
    model = wm.WorldModel(wm.preset('likelihood', 'tiny', retexture_posterior=1.0)).train()
    terms = wm.loss_terms(model, data.images, data.actions, torch.Generator().manual_seed(2),
                          retextured=alt)
    gen = torch.Generator().manual_seed(2)
    torch.rand(3, generator=gen)  # the per-sequence draw of which sequences are retextured
    embeds = model.encoder(wm.preprocess(alt))  # the posterior sees the retextured views
    state, posts = model.initial_state(3), []
    for t in range(5):
        state, _ = model.obs_step(state, torch.as_tensor(data.actions[:, t]), embeds[:, t],
                                  True, gen)
        posts.append(state)
    recon = model.decoder(wm.stack_states(posts).features)
    target = wm.preprocess(data.images)  # ... and the decoder targets the true images
    expected = 0.5 * ((recon - target) ** 2).sum(dim=(-3, -2, -1)).mean()
    assert float(terms['nll'].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


@pytest.mark.parametrize('objective', wm.OBJECTIVES)
def test_training_with_and_without_retextured_views(tmp_path, objective):
    torch.set_num_threads(1)
    data = synthetic_sequences(episodes=4, steps=12)
    loaded = {'images': data.images, 'actions': data.actions}
    old = Sequences.from_trajectories(loaded, 16)  # data collected before the views existed
    assert old.retextured is None
    new = Sequences.from_trajectories({**loaded, 'images_retextured': 255 - data.images}, 16)
    assert np.array_equal(new.retextured, 255 - data.images)
    images, _, alt = new.sample_views(np.random.default_rng(0), 3, 5)
    assert np.array_equal(alt, 255 - images)  # the same windows
    cfg = wm.preset(objective, 'tiny', retexture=0.5, retexture_posterior=0.5)
    runs = {}
    for name, seqs in (('old', old), ('new', new)):
        out = tmp_path / f'{name}.pt'
        summary = train(cfg, TrainConfig(steps=4, batch=4, seq_len=6, log_every=2), seqs, out)
        assert summary['finished'] and np.isfinite(summary['last']['loss'])
        runs[name] = wm.load_checkpoint(out)[0]
    changed = [not torch.equal(a, b) for a, b in zip(runs['old'].state_dict().values(),
                                                     runs['new'].state_dict().values())]
    assert any(changed)


def test_integrate_actions_stops_at_walls():
    @dataclass
    class Corridor:  # free for x < 2, wall beyond
        def clearance_at(self, x, y):
            return 2.0 - x

    end, blocked = tr.integrate_actions(Corridor(), (0.0, 0.0, 0.0), [[0.5, 0.0]] * 2, 1.0,
                                        radius=0.3, physics_hz=100)
    assert not blocked and end[0] == pytest.approx(1.0, abs=1e-6)
    end, blocked = tr.integrate_actions(Corridor(), (0.0, 0.0, 0.0), [[1.0, 0.0]] * 3, 1.0,
                                        radius=0.3, physics_hz=100)
    assert blocked and 1.6 < end[0] <= 1.7 + 1e-9


# ------------------------------------------------------------------ toy world for imagination
class ToyModel(nn.Module):
    """Exact model of a 4 x 4 room: state = position, action = displacement, blob images."""

    def __init__(self, objective: str):
        super().__init__()
        self.config = wm.preset(objective, 'tiny')
        centres = np.stack(np.meshgrid(np.arange(4) + 0.5, np.arange(4) + 0.5), -1)
        self.centres = torch.tensor(centres.reshape(-1, 2), dtype=torch.float32)
        coords = (torch.arange(16) + 0.5) * 0.25
        self.coords = coords

    def _rbf(self, pos):
        d2 = ((pos[..., None, :] - self.centres) ** 2).sum(-1)
        return nn.functional.normalize(torch.exp(-d2 / 0.5), dim=-1)

    def encoder(self, x):  # (N, 3, 16, 16) in [-0.5, 0.5] -> blob centroid
        w = x[..., 0, :, :] + 0.5
        w = w / w.sum(dim=(-2, -1), keepdim=True)
        return torch.stack([(w.sum(-2) * self.coords).sum(-1),
                            (w.sum(-1) * self.coords).sum(-1)], -1)

    def obs_embedding(self, e):
        return self._rbf(e)

    def state_embedding(self, features):
        return self._rbf(features[..., :2])

    def score(self, h, g):
        return h @ g.transpose(-1, -2) / 0.1

    def decoder(self, features):
        img = blob_images(features[..., :2].numpy())
        return wm.preprocess(img)

    def img_step(self, state, action, sample=False, generator=None):
        pos = torch.clamp(state.deter + action, 0.2, 3.8)
        zero = torch.zeros(pos.shape[0], 1)
        return wm.State(pos, zero, zero, zero + 1)


def toy_memory(model, positions):
    pos = torch.tensor(positions, dtype=torch.float32)
    zero = torch.zeros(len(positions), 1)
    return im.PlaceMemory(wm.State(pos, zero, zero, zero + 1),
                          blob_images(np.asarray(positions, float)))


@pytest.mark.parametrize('objective', wm.OBJECTIVES)
def test_imagination_proposes_only_reachable_unknown_links(objective):
    model = ToyModel(objective)
    places = [(0.5, 0.5), (2.5, 0.5), (2.5, 2.5), (0.5, 3.5)]
    memory = toy_memory(model, places)
    right = np.tile([[1.0, 0.0]], (2, 1))
    up = np.tile([[0.0, 1.0]], (2, 1))
    candidates = np.stack([right, up]).astype(np.float32)
    props = im.propose_links(model, memory, candidates, known=[(0, 1)], threshold=0.6)
    pairs = {(p.a, p.b) for p in props}
    # Two steps right or up reach exactly one other place from 1 and 2 only:
    # 1 -(up)-> 2 and 2 -(nothing)-; 0 -> 1 is known; 0 -(up)-> (0.5, 2.5) is no place.
    assert (1, 2) in pairs
    assert (0, 1) not in pairs and (1, 0) not in pairs
    assert all(p.a != p.b for p in props)
    assert (0, 3) not in pairs  # 2 m up from place 0 stops 1 m short of place 3
    best = next(p for p in props if (p.a, p.b) == (1, 2))
    assert best.confidence > 0.6
    assert np.allclose(best.actions, up[:len(best.actions)]) and len(best.actions) == 2
    confs = [p.confidence for p in props]
    assert confs == sorted(confs, reverse=True)


@pytest.mark.parametrize('objective', wm.OBJECTIVES)
def test_goal_efe_prefers_the_matching_place(objective):
    model = ToyModel(objective)
    places = [(0.5, 0.5), (3.5, 0.5), (2.0, 2.0), (0.5, 3.5)]
    memory = toy_memory(model, places)
    for k, (x, y) in enumerate(places):
        goal = blob_images(np.array([x + 0.1, y - 0.1]))
        efe, pref = im.goal_preference(model, memory, goal, gamma=20.0)
        assert int(np.argmin(efe)) == k
        assert int(np.argmax(pref)) == k and math.isclose(pref.sum(), 1.0, rel_tol=1e-9)


def test_contrastive_goal_efe_matches_the_formula():
    torch.manual_seed(1)
    model = wm.WorldModel(tiny('contrastive')).eval()
    rng = np.random.default_rng(0)
    goal = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    refs = rng.integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    feats = torch.randn(4, model.config.feature_dim)
    with torch.no_grad():
        efe = wm.goal_efe(model, goal, feats, refs)
        obs = np.concatenate([goal[None], refs])
        h = model.obs_embedding(model.encoder(wm.preprocess(obs)))
        g = model.state_embedding(feats)
        f = (h @ g.T / model.config.nce_temperature).numpy()
    expected = -f[0] + np.log(np.mean(np.exp(f), axis=0))
    assert np.allclose(efe.numpy(), expected, atol=1e-5)


def test_candidate_actions_turn_then_go():
    c = im.candidate_actions(horizon=4, turn_steps=2, linear=0.5, angular=1.0)
    assert c.shape == (5, 4, 2)
    assert np.allclose(c[0], [[0, -1], [0, -1], [0.5, 0], [0.5, 0]])
    assert np.allclose(c[2], [[0.5, 0]] * 4)


def test_colour_augmentation_keeps_shape_and_range():
    x = torch.rand(2, 5, 3, 8, 8) - 0.5
    same = wm.augment_colours(x, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(same, x)
    a = wm.augment_colours(x, 1.0, torch.Generator().manual_seed(0))
    b = wm.augment_colours(x, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= -0.5 and a.max() <= 0.5 and not torch.allclose(a, x)


def test_dead_reckoning_follows_unicycle_arcs():
    straight = im.dead_reckon((1.0, 2.0, 0.0), [[0.5, 0.0], [0.5, 0.0]], 1.0)
    assert np.allclose(straight, [[1.5, 2.0, 0.0], [2.0, 2.0, 0.0]])
    # A quarter circle of radius 1 (v = w * r) to the left ends at (1, 1) facing +y.
    arc = im.dead_reckon((0.0, 0.0, 0.0), [[math.pi / 2, math.pi / 2]], 1.0)
    assert np.allclose(arc[-1], [1.0, 1.0, math.pi / 2], atol=1e-9)


def test_place_poses_gate_the_links():
    model = ToyModel('contrastive')
    places = [(0.5, 0.5), (2.5, 0.5), (2.5, 2.5), (0.5, 3.5)]
    memory = toy_memory(model, places)
    up = np.tile([[0.0, 1.0]], (1, 2, 1)).astype(np.float32)
    free = im.propose_links(model, memory, up, known=[(0, 1)], threshold=0.6)
    assert (1, 2) in {(p.a, p.b) for p in free}
    # Odometry says the same actions lead nowhere near place 2 (far away poses): no link.
    far = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [50.0, 50.0, 0.0], [0.0, 9.0, 0.0]])
    gated = im.propose_links(model, memory, up, known=[(0, 1)], threshold=0.6,
                             place_poses=far, action_period=0.5)
    assert (1, 2) not in {(p.a, p.b) for p in gated}
    with pytest.raises(ValueError, match=r'place_poses must be \(4, 3\)'):
        im.propose_links(model, memory, up, place_poses=far[:2])


def test_images_of_the_wrong_size_are_rejected():
    model = wm.WorldModel(tiny('contrastive'))
    with pytest.raises(ValueError, match=r'\(\.\.\., 16, 16, 3\) for this model, got'):
        wm.observe(model, np.zeros((1, 2, 32, 32, 3), np.uint8), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match='16, 16, 3'):
        wm.embed_observation(model, np.zeros((2, 32, 32, 3), np.uint8))
    small = wm.resize_images(np.zeros((2, 32, 32, 3), np.uint8), 16)
    assert wm.embed_observation(model, small).shape == (2, model.config.proj_dim)
