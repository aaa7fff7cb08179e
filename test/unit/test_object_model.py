"""Unit tests of the object model, its data (collect objects), training CLI and belief fusion."""
import json

import numpy as np
import pytest
import torch

from embodied_aif.cli import collect_objects, train_object_model
from embodied_aif.models.object_crops import crop_object, image_up, load_views
from embodied_aif.models.object_model import (
    CheckpointError,
    LossWeights,
    ObjectClassifier,
    ObjectModel,
    ObjectModelConfig,
    PairSampler,
    camera_move,
    default_weights_path,
    load_checkpoint,
    make_batch,
    occlude_crop,
    predict_categories,
    predict_inputs,
    prepare_dataset,
    save_checkpoint,
    train_epoch,
    training_losses,
)
from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    Detection,
    SensorModel,
    classifier_likelihood,
    empty_scene,
    fuse_category_likelihoods,
    size_temperature,
    update,
)
from embodied_aif.models.segmentation import CameraIntrinsics, look_at
from embodied_aif.sim.scenario import CATEGORIES

TINY = dict(crop_size=16, input_size=16, channels=(8, 16), hidden=32, shape_dim=4,
            pose_dim=2)


def synthetic_views(n_inst=3, n_views=4, size=16, seed=0):
    """Three categories of flat shapes (square, disc, bar) with random colours and sizes.

    Every instance is 'seen' from the same n_views viewpoints; the viewpoint shifts and
    shrinks the shape, so pose and shape both show in the crop.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    views = [(rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 1.0), rng.uniform(0.3, 1.2))
             for _ in range(n_views)]
    out = {k: [] for k in ('rgb', 'depth', 'mask', 'scale', 'category', 'instance', 'view',
                           'azimuth', 'elevation', 'range')}
    for cat in range(3):
        for i in range(n_inst):
            colour = rng.integers(60, 255, 3)
            r = rng.uniform(0.25, 0.4) * size
            for v, (az, el, rg) in enumerate(views):
                cx, cy = size / 2 + 2 * np.cos(az), size / 2 + 2 * np.sin(az)
                rr = r / (0.5 + rg)
                if cat == 0:
                    m = (abs(xx - cx) < rr) & (abs(yy - cy) < rr)
                elif cat == 1:
                    m = (xx - cx) ** 2 + (yy - cy) ** 2 < rr ** 2
                else:
                    m = (abs(xx - cx) < rr / 3) & (abs(yy - cy) < rr * 1.2)
                out['rgb'].append(np.where(m[..., None], colour, 0).astype(np.uint8))
                out['depth'].append(np.where(m, 0.02 * (yy - cy) / size * el, 0.0))
                out['mask'].append(m.astype(np.uint8))
                out['scale'].append(0.1 + 0.05 * cat)
                for key, value in (('category', cat), ('instance', 3 * cat + i), ('view', v),
                                   ('azimuth', az), ('elevation', el), ('range', rg)):
                    out[key].append(value)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """One torch thread: on a loaded CI machine a second thread spin-waits at every op."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return ObjectModel(ObjectModelConfig(categories=('square', 'disc', 'bar'), **TINY))


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory):
    """A two-category, two-instance, three-view dataset rendered by `collect objects`."""
    out = tmp_path_factory.mktemp('views')
    rc = collect_objects.main(['--out', str(out), '--categories', 'can,box', '--train', '1',
                               '--test', '1', '--views', '3', '--seed', '3',
                               '--crop-size', '32', '--render-size', '64'])
    assert rc == 0
    return out


def test_tiny_training_reduces_loss_and_beats_chance():
    arrays = synthetic_views()
    model = tiny_model()
    inputs = prepare_dataset(model, arrays)
    sampler = PairSampler(arrays['instance'], arrays['view'], arrays['category'])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        terms = train_epoch(model, opt, inputs, sampler, rng, gen, batch_size=12,
                            weights=LossWeights(recon=1.0))
        losses.append(terms['loss'])
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])
    probs = predict_inputs(model, inputs['x'], inputs['log_scale'])
    assert probs.shape == (36, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.mean(probs.argmax(1) == arrays['category']) > 0.8  # chance is 1/3


def test_pair_sampler_swaps_instances_at_the_same_view():
    arrays = synthetic_views()
    sampler = PairSampler(arrays['instance'], arrays['view'], arrays['category'])
    anchors = np.arange(36)
    same_view, other_view = sampler.sample(anchors, np.random.default_rng(1))
    inst, view, cat = arrays['instance'], arrays['view'], arrays['category']
    assert np.all(cat[same_view] == cat[anchors]) and np.all(cat[other_view] == cat[anchors])
    assert np.all(view[same_view] == view[anchors])       # x_b(v): the anchor's viewpoint
    assert np.all(inst[same_view] != inst[anchors])       # ... of another instance
    assert np.all(inst[other_view] == inst[same_view])    # x_b(w): that instance
    assert np.all(view[other_view] != view[anchors])      # ... at another viewpoint


def test_swap_losses_are_finite_and_reach_the_shape_encoder():
    arrays = synthetic_views()
    model = tiny_model()
    inputs = prepare_dataset(model, arrays)
    sampler = PairSampler(arrays['instance'], arrays['view'], arrays['category'])
    batch = make_batch(inputs, np.arange(8), sampler, np.random.default_rng(0))
    np.testing.assert_allclose(batch['move'].numpy(), camera_move(
        inputs['view'][sampler.sample(np.arange(8), np.random.default_rng(0))[1]],
        inputs['view'][np.arange(8)]), atol=1e-6)
    terms = training_losses(model, batch, LossWeights(), torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in terms.values())
    assert float(terms['recon']) == 0.0 and float(terms['swap']) > 0.0
    terms['loss'].backward()
    assert model.head_shape.weight.grad.abs().sum() > 0   # shape of x_b(w) renders x_b(v)
    assert model.transition[0].weight.grad.abs().sum() > 0


def test_occlusion_augmentation_cuts_encoder_inputs_only():
    arrays = synthetic_views()
    model = tiny_model()
    inputs = prepare_dataset(model, arrays)
    sampler = PairSampler(arrays['instance'], arrays['view'], arrays['category'])
    plain = make_batch(inputs, np.arange(8), sampler, np.random.default_rng(0))
    cut = make_batch(inputs, np.arange(8), sampler, np.random.default_rng(0), occlude=1.0,
                     model=model)
    assert torch.equal(plain['x_bv'], cut['x_bv'])          # the rendered target stays whole
    assert not torch.equal(plain['x'], cut['x'])
    args = (arrays['rgb'][0], arrays['depth'][0], arrays['mask'][0], float(arrays['scale'][0]))
    part = occlude_crop(*args, np.random.default_rng(2))
    whole = occlude_crop(*args, np.random.default_rng(2), keep=(1.0, 1.0))
    assert whole[2].sum() > part[2].sum() > 0 and part[3] < whole[3]  # a part, cut tighter


def test_crops_are_turned_so_that_world_up_points_up():
    level = look_at([0.0, -1.0, 0.5], [0.0, 0.0, 0.5])   # horizontal optical axis
    np.testing.assert_allclose(image_up(level, [0.0, 0.0, 0.5], 100, 100, 50, 40), [0, -1],
                               atol=1e-9)
    rolled = level.copy()
    rolled[:3, :2] = np.stack([-level[:3, 1], level[:3, 0]], 1)  # camera rolled by 90 degrees
    up = image_up(rolled, [0.0, 0.0, 0.5], 100, 100, 50, 40)
    np.testing.assert_allclose(np.abs(up), [1, 0], atol=1e-9)
    # a standing object seen by the rolled camera lies along the image rows ...
    rgb = np.zeros((40, 50, 3), np.uint8)
    depth = np.ones((40, 50), np.float32)
    mask = np.zeros((40, 50), bool)
    mask[18:22, 10:40] = True
    plain = crop_object(rgb, depth, mask, 100.0, 16)[2]
    turned = crop_object(rgb, depth, mask, 100.0, 16, up=up)[2]
    assert np.ptp(np.nonzero(plain)[0]) < np.ptp(np.nonzero(plain)[1])     # wide
    assert np.ptp(np.nonzero(turned)[0]) > np.ptp(np.nonzero(turned)[1])   # ... tall again
    same = crop_object(rgb, depth, mask, 100.0, 16, up=(0.0, -1.0))
    assert np.array_equal(same[2], plain) and same[3] == crop_object(rgb, depth, mask, 100.0,
                                                                     16)[3]


def test_camera_move_features():
    m = camera_move([0.0, 0.2, 0.5], [np.pi / 2, 0.5, 1.0])
    np.testing.assert_allclose(m, [1.0, -1.0, 0.3, np.log(2.0)], atol=1e-6)
    with pytest.raises(ValueError, match='ranges'):
        camera_move([0.0, 0.0, 0.0], [0.0, 0.0, 1.0])


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model(3)
    path = tmp_path / 'm.pt'
    save_checkpoint(path, model, {'epochs': 2, 'note': 'tiny'})
    loaded, info = load_checkpoint(path, categories=('square', 'disc', 'bar'))
    assert info.meta == {'epochs': 2, 'note': 'tiny'}
    assert loaded.config == model.config
    x = torch.rand(4, 5, 16, 16)
    ls = torch.zeros(4, 1)
    model.eval()
    with torch.no_grad():
        a, b = model.encode(x, ls), loaded.encode(x, ls)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_corrupt_and_mismatched_checkpoints_raise_naming_the_file(tmp_path):
    model = tiny_model()
    good = tmp_path / 'good.pt'
    save_checkpoint(good, model)
    with pytest.raises(CheckpointError, match='missing.pt.*not found'):
        load_checkpoint(tmp_path / 'missing.pt')
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'this is not a checkpoint')
    with pytest.raises(CheckpointError, match='garbage.pt.*corrupt'):
        load_checkpoint(garbage)
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match='truncated.pt'):
        load_checkpoint(truncated)
    data = torch.load(good, weights_only=True)
    other = tmp_path / 'other.pt'
    torch.save({'format': 'something.else'}, other)
    with pytest.raises(CheckpointError, match="other.pt.*format 'something.else'"):
        load_checkpoint(other)
    old = tmp_path / 'old.pt'
    torch.save({**data, 'version': 0}, old)
    with pytest.raises(CheckpointError, match='old.pt.*version 0'):
        load_checkpoint(old)
    wrong = tmp_path / 'wrong.pt'
    torch.save({**data, 'config': {**data['config'], 'channels': [8, 32]}}, wrong)
    with pytest.raises(CheckpointError, match='wrong.pt.*do not match'):
        load_checkpoint(wrong)
    with pytest.raises(CheckpointError, match='good.pt.*categories'):
        load_checkpoint(good, categories=('disc', 'square', 'bar'))


def test_collect_writes_a_valid_dataset(tiny_dataset):
    manifest = json.loads((tiny_dataset / 'manifest.json').read_text())
    assert manifest['categories'] == ['can', 'box']
    assert [i['split'] for i in manifest['instances']] == ['train', 'test'] * 2
    assert all(len(s['sha256']) == 64 for s in manifest['shards'])
    data = load_views(tiny_dataset)
    n = manifest['n_samples']
    assert n + manifest['n_skipped_views'] == 4 * 3 and n >= 8
    assert data.arrays['rgb'].shape == (n, 32, 32, 3)
    assert set(data.arrays['category']) == {0, 1}
    assert data.split_indices('train').size + data.split_indices('test').size == n
    mask = data.arrays['mask'].astype(bool)
    assert mask.any(axis=(1, 2)).all()
    assert np.all(data.arrays['depth'][~mask] == 0) and np.all(data.arrays['rgb'][~mask] == 0)
    # the can is a cylinder of radius <= 3.6 cm: the crop is a few centimetres to 30 cm wide
    assert np.all((data.arrays['scale'] > 0.03) & (data.arrays['scale'] < 0.4))
    shard = tiny_dataset / manifest['shards'][0]['file']
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    broken = tiny_dataset.parent / 'broken'
    broken.mkdir()
    (broken / 'manifest.json').write_text(json.dumps(manifest))
    (broken / shard.name).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match='shard_0000.npz.*sha256'):
        load_views(broken)


def test_train_cli_resume_matches_an_uninterrupted_run(tiny_dataset, tmp_path, capsys):
    common = ['--data', str(tiny_dataset), '--seed', '1', '--channels', '8,16',
              '--input-size', '16', '--batch-size', '4', '--threads', '1']
    assert train_object_model.main([*common, '--out', str(tmp_path / 'a.pt'),
                                    '--epochs', '3']) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['epochs'] == 3 and 0.0 <= summary['test_view_accuracy'] <= 1.0
    assert train_object_model.main([*common, '--out', str(tmp_path / 'b.pt'),
                                    '--epochs', '2']) == 0
    assert train_object_model.main([*common, '--out', str(tmp_path / 'b.pt'),
                                    '--epochs', '3', '--resume']) == 0
    a, info_a = load_checkpoint(tmp_path / 'a.pt')
    b, info_b = load_checkpoint(tmp_path / 'b.pt')
    assert info_a.meta['epochs'] == info_b.meta['epochs'] == 3
    assert len(info_b.meta['history']) == 3
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)
    capsys.readouterr()
    assert train_object_model.main([*common, '--out', str(tmp_path / 'c.pt'),
                                    '--resume']) == 2
    assert 'c.pt.train not found' in capsys.readouterr().err


def test_classifier_crops_clusters_and_maps_category_names():
    model = tiny_model()
    names = ('bar', 'unknown', 'square')
    clf = ObjectClassifier(model, names)
    rgb = np.zeros((40, 50, 3), np.uint8)
    depth = np.full((40, 50), 1.0, np.float32)
    rgb[5:15, 5:15] = 200
    depth[5:15, 5:15] = 0.8
    objects = [np.flatnonzero(((np.arange(40)[:, None] >= 5) & (np.arange(40)[:, None] < 15)
                               & (np.arange(50) >= 5) & (np.arange(50) < 15)).ravel()),
               np.zeros((40, 50), bool)]   # no pixels: an all-zero row
    q = clf.classify(rgb, depth, objects, focal=50.0)
    assert q.shape == (2, 3) and np.all(q[1] == 0.0) and q[0, 1] == 0.0
    crop = crop_object(rgb, depth, objects[0], 50.0, 16)
    x, ls = model.prepare(crop[0][None], crop[1][None], crop[2][None], [crop[3]])
    full = predict_inputs(model, x, ls)[0]
    np.testing.assert_allclose(q[0, [0, 2]], full[[2, 0]], atol=1e-6)
    # q(shape) of the same crops: the encoder's mean and variance, NaN where no crop was cut
    latents = clf.encode(rgb, depth, objects, focal=50.0)
    with torch.no_grad():
        enc = model.encode(x, ls)
    dim = model.config.shape_dim
    assert latents['shape_mean'].shape == latents['shape_var'].shape == (2, dim)
    np.testing.assert_allclose(latents['shape_mean'][0], enc['shape_mu'][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(latents['shape_var'][0], enc['shape_logvar'][0].exp().numpy(),
                               rtol=1e-5)
    assert np.all(latents['shape_var'][0] > 0.0) and np.all(np.isnan(latents['shape_mean'][1]))
    np.testing.assert_array_equal(latents['probs'], q)


def test_shipped_weights_recognise_unseen_instances(tmp_path):
    model, info = load_checkpoint(default_weights_path(), categories=CATEGORIES)
    assert default_weights_path().stat().st_size < 3_000_000
    assert model.config.shape_dim == 16 and model.config.pose_dim == 8
    assert info.meta['history'][-1]['test_view_accuracy'] > 0.5
    # instances and viewpoints of another seed than the training data's
    manifest = collect_objects.collect(tmp_path, n_train=1, n_test=0, n_views=2, seed=7,
                                       quiet=True)
    data = load_views(tmp_path)
    probs = predict_categories(model, data.arrays)
    assert manifest['n_samples'] == len(probs) >= 15
    assert np.mean(probs.argmax(1) == data.arrays['category']) > 0.6   # chance: 0.1


def test_classifier_likelihood_tempering_and_floor():
    q = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    lik = classifier_likelihood(q, temperature=0.5, floor=0.03)
    np.testing.assert_allclose(lik[0], [0.98, 0.01, 0.01])
    np.testing.assert_allclose(lik[1], [1 / 3] * 3)   # no classifier output: uninformative
    sharp = classifier_likelihood([[0.8, 0.1, 0.1]], temperature=1.0, floor=0.0)[0]
    soft = classifier_likelihood([[0.8, 0.1, 0.1]], temperature=0.5, floor=0.0)[0]
    assert soft[0] / soft[1] == pytest.approx(np.sqrt(sharp[0] / sharp[1]))
    with pytest.raises(ValueError, match='temperature'):
        classifier_likelihood(q, temperature=0.0)
    # small clusters (fragments, far objects) get a proportionally lower temperature
    temps = size_temperature([15, 75, 150, 900], 0.5, full_pixels=150)
    np.testing.assert_allclose(temps, [0.05, 0.25, 0.5, 0.5])
    rows = classifier_likelihood(np.tile([0.8, 0.1, 0.1], (4, 1)), temps, floor=0.0)
    assert rows[0, 0] < rows[1, 0] < rows[2, 0] == rows[3, 0]
    # independent product of the views, by hand
    views = np.array([[0.5, 0.3, 0.2], [0.6, 0.1, 0.3]])
    post = fuse_category_likelihoods(views)
    np.testing.assert_allclose(post, views.prod(0) / views.prod(0).sum())


def test_scene_beliefs_fuse_noisy_classifier_views():
    """A noisy classifier (right 60% of views among 4 categories) yields a confident belief."""
    names = ('can', 'box', 'mug', 'bowl')
    intr = CameraIntrinsics.from_fov(160, 120, np.deg2rad(60.0))
    sensor = SensorModel(intr)
    t_cam = look_at([0.0, -0.6, 0.5], [0.0, 0.0, 0.0])
    rng = np.random.default_rng(4)
    scene = empty_scene(names)
    truth = np.array([[0.1, 0.0, 0.03], [-0.1, 0.05, 0.03]])
    labels = [2, 0]
    entropies = []
    for step in range(12):
        dets = []
        for pos, label in zip(truth, labels):
            q = np.full(4, 0.1)
            q[label if rng.uniform() < 0.6 else int(rng.integers(4))] += 0.6
            dets.append(Detection(pos + rng.normal(0, 0.002, 3), 1e-4 * np.eye(3),
                                  classifier_likelihood(q / q.sum())))
        scene, _ = update(scene, dets, t_cam, sensor, 0.1 * (step + 1), BeliefConfig())
        probs = np.array([o.category_probs for o in scene.objects])
        entropies.append(float(-(probs * np.log(probs)).sum(1).mean()))
    assert len(scene.objects) == 2
    for obj in scene.objects:
        k = int(np.argmin([np.linalg.norm(obj.mean - t) for t in truth]))
        assert int(np.argmax(obj.category_probs)) == labels[k]
        assert obj.category_probs[labels[k]] > 0.9
    assert entropies[-1] < 0.5 * entropies[0]
