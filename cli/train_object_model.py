"""Train the disentangled object model (models/object_model.py) on collected object views.

`embodied-aif train object_model --data DIR --out FILE [--epochs N] [--seed S] [--resume]`
trains on the dataset's training instances and reports category accuracy on its held-out
instances (per view, and per instance with all its views fused as scene_beliefs does). After
every epoch it writes the weights-only model to FILE and the training state (weights,
optimiser, epoch, history) to FILE.train, both atomically; --resume continues from
FILE.train after an interruption and gives the same result as an uninterrupted run (each
epoch's randomness derives from the seed and the epoch number). Progress lines go to stderr,
one JSON summary to stdout. Recipe of the shipped weights: docs/object_model.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from embodied_aif.models.object_crops import load_views
from embodied_aif.models.object_model import (
    LossWeights,
    ObjectModel,
    ObjectModelConfig,
    PairSampler,
    predict_inputs,
    prepare_dataset,
    save_checkpoint,
    train_epoch,
)
from embodied_aif.models.scene_beliefs import classifier_likelihood, fuse_category_likelihoods

STATE_FORMAT = 'embodied_aif.object_model.train_state'


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate(model: ObjectModel, inputs: dict, indices, instance) -> dict:
    """Per-view and per-instance (all views fused) category accuracy on sample indices."""
    indices = np.asarray(indices)
    if indices.size == 0:
        return {'view_accuracy': float('nan'), 'instance_accuracy': float('nan')}
    idx = torch.as_tensor(indices)
    probs = predict_inputs(model, inputs['x'][idx], inputs['log_scale'][idx])
    labels = inputs['category'][idx].numpy()
    inst = np.asarray(instance)[indices]
    fused = []
    for iid in np.unique(inst):
        sel = inst == iid
        post = fuse_category_likelihoods(classifier_likelihood(probs[sel]))
        fused.append(int(post.argmax()) == int(labels[sel][0]))
    return {'view_accuracy': float(np.mean(probs.argmax(1) == labels)),
            'instance_accuracy': float(np.mean(fused))}


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + '.train')


def main(argv=None) -> int:
    """Entry point of `embodied-aif train object_model`."""
    parser = argparse.ArgumentParser(prog='embodied-aif train object_model',
                                     description=(__doc__ or '').strip().splitlines()[0])
    parser.add_argument('--data', required=True, help='dataset directory (collect objects)')
    parser.add_argument('--out', required=True, help='weights file to write (.pt)')
    parser.add_argument('--epochs', type=int, default=15, help='passes over the training views')
    parser.add_argument('--seed', type=int, default=0, help='seed of initialisation and batches')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3, help='Adam learning rate')
    parser.add_argument('--channels', default='16,32,32', help='encoder conv channels')
    parser.add_argument('--input-size', type=int, default=32, help='model input side, pixels')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (1: on a shared machine more threads spin-wait)')
    parser.add_argument('--occlude', type=float, default=0.4,
                        help='fraction of encoder inputs cut to a part of the object')
    parser.add_argument('--max-steps', type=int, default=None,
                        help='cap on optimiser steps per epoch (quick runs)')
    parser.add_argument('--resume', action='store_true', help='continue from OUT.train')
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        parser.error('--epochs, --batch-size and --lr must be positive')
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    try:
        data = load_views(args.data)
    except ValueError as exc:
        print(f'embodied-aif train object_model: error: {exc}', file=sys.stderr)
        return 2
    arrays = data.arrays
    config = ObjectModelConfig(categories=tuple(data.categories),
                               crop_size=int(data.manifest['crop_size']),
                               input_size=args.input_size,
                               channels=tuple(int(c) for c in args.channels.split(',')))
    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        model = ObjectModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    history, first_epoch = [], 0
    state_path = _state_path(out)
    if args.resume:
        if not state_path.is_file():
            print(f'embodied-aif train object_model: error: --resume: {state_path} not found',
                  file=sys.stderr)
            return 2
        try:
            state = torch.load(state_path, map_location='cpu', weights_only=True)
            if not isinstance(state, dict) or state.get('format') != STATE_FORMAT:
                raise ValueError('not a training state file')
            if state['config'] != _plain(config):
                raise ValueError(f"trained with configuration {state['config']}, "
                                 f'now {_plain(config)}')
            model.load_state_dict(state['model'])
            optimizer.load_state_dict(state['optimizer'])
        except Exception as exc:  # noqa: BLE001 - report any unusable state file clearly
            print(f'embodied-aif train object_model: error: {state_path}: cannot resume: '
                  f'{exc}', file=sys.stderr)
            return 2
        first_epoch, history = int(state['epoch']), list(state['history'])
        _progress(f'resuming after epoch {first_epoch} from {state_path}')

    inputs = prepare_dataset(model, arrays)
    train_idx, test_idx = data.split_indices('train'), data.split_indices('test')
    sampler = PairSampler(arrays['instance'], arrays['view'], arrays['category'], train_idx)
    n_params = sum(p.numel() for p in model.parameters())
    _progress(f'object model: {n_params} parameters, {train_idx.size} training and '
              f'{test_idx.size} held-out views, {len(data.categories)} categories')
    eval_train = np.random.default_rng([args.seed, 999]).choice(
        train_idx, min(train_idx.size, test_idx.size or 1000), replace=False)
    start = time.perf_counter()
    for epoch in range(first_epoch, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        gen = torch.Generator().manual_seed(args.seed * 100_003 + epoch)
        t0 = time.perf_counter()

        def step_report(step, terms, epoch=epoch, t0=t0):
            if step % 25 == 0:
                loss = float(terms['loss'].detach())
                _progress(f'  epoch {epoch + 1} step {step}: loss {loss:.1f} '
                          f'({time.perf_counter() - t0:.0f} s)')

        terms = train_epoch(model, optimizer, inputs, sampler, rng, gen, args.batch_size,
                            LossWeights(), args.max_steps, step_report, args.occlude)
        test = evaluate(model, inputs, test_idx, arrays['instance'])
        train = evaluate(model, inputs, eval_train, arrays['instance'])
        record = {'epoch': epoch + 1, **{k: round(v, 4) for k, v in terms.items()},
                  'train_view_accuracy': round(train['view_accuracy'], 4),
                  'test_view_accuracy': round(test['view_accuracy'], 4),
                  'test_instance_accuracy': round(test['instance_accuracy'], 4),
                  'epoch_s': round(time.perf_counter() - t0, 1)}
        history.append(record)
        _progress(f"epoch {epoch + 1}/{args.epochs}: loss {record['loss']:.1f} recon "
                  f"{record['recon']:.1f} swap {record['swap']:.1f} ce {record['ce']:.3f} "
                  f"train acc {record['train_view_accuracy']:.3f} held-out acc "
                  f"{record['test_view_accuracy']:.3f} (per view), "
                  f"{record['test_instance_accuracy']:.3f} (per instance, fused) "
                  f"[{record['epoch_s']} s]")
        meta = {'dataset': str(args.data), 'dataset_seed': data.manifest.get('seed'),
                'seed': args.seed, 'epochs': epoch + 1, 'history': history}
        save_checkpoint(out, model, meta)
        tmp = state_path.with_name(state_path.name + '.tmp')
        torch.save({'format': STATE_FORMAT, 'epoch': epoch + 1, 'config': _plain(config),
                    'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                    'history': history}, tmp)
        tmp.replace(state_path)
    last = history[-1] if history else {}
    print(json.dumps({'out': str(out), 'epochs': args.epochs, 'parameters': n_params,
                      'train_view_accuracy': last.get('train_view_accuracy'),
                      'test_view_accuracy': last.get('test_view_accuracy'),
                      'test_instance_accuracy': last.get('test_instance_accuracy'),
                      'wall_s': round(time.perf_counter() - start, 1)}))
    return 0


def _plain(config: ObjectModelConfig) -> dict:
    """The configuration as plain data (lists, not tuples) for comparison and storage."""
    return {'categories': list(config.categories), 'crop_size': config.crop_size,
            'input_size': config.input_size, 'shape_dim': config.shape_dim,
            'pose_dim': config.pose_dim, 'channels': list(config.channels),
            'hidden': config.hidden, 'depth_scale': config.depth_scale,
            'min_logvar': config.min_logvar}
