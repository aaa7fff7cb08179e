"""Train the low-level world model (RSSM, likelihood or contrastive) on collected trajectories.

Example: ``embodied-aif train world_model --objective contrastive --data /tmp/wm_data/default
--out models/weights/world_model_contrastive.pt``. Recipe and format: docs/world_model.md.
"""
import argparse
import json
import sys

import torch

from embodied_aif.models.world_model import OBJECTIVES, CheckpointError, preset
from embodied_aif.models.world_model_train import (
    Sequences,
    TrainConfig,
    train,
    train_state_path,
)
from embodied_aif.sim.trajectories import DatasetError, load_trajectories


def main(argv=None) -> int:
    """Parse arguments, train, print a JSON summary; 0 on success."""
    parser = argparse.ArgumentParser(prog='embodied-aif train world_model',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--objective', choices=OBJECTIVES, required=True)
    parser.add_argument('--data', required=True, help='trajectory directory (manifest.json)')
    parser.add_argument('--out', required=True, help='output weights file (.pt)')
    parser.add_argument('--size', choices=('small', 'tiny'), default='small',
                        help='model preset (tiny: tests and smoke runs)')
    parser.add_argument('--steps', type=int, default=1500, help='gradient updates')
    parser.add_argument('--batch', type=int, default=16, help='sequences per batch')
    parser.add_argument('--seq-len', type=int, default=20, help='steps per sequence')
    parser.add_argument('--lr', type=float, default=6e-4)
    parser.add_argument('--retexture', type=float, default=None,
                        help='probability that an observation on the InfoNCE h(o) side is its '
                             'retextured view (data collected with --retextured; default: '
                             'the preset)')
    parser.add_argument('--cnn-depth', type=int, default=None,
                        help="channels of the encoder's first conv layer (doubling per layer; "
                             'default: the preset)')
    parser.add_argument('--retexture-posterior', type=float, default=None,
                        help='probability that a sequence is filtered from its retextured '
                             'views (default: the preset)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (1: more threads thrash on a shared machine)')
    parser.add_argument('--log-every', type=int, default=25)
    parser.add_argument('--checkpoint-every', type=int, default=100)
    parser.add_argument('--max-minutes', type=float, default=None,
                        help='stop (with a checkpoint) after this long; continue with --resume')
    parser.add_argument('--resume', action='store_true',
                        help='continue from <out>.train.pt written by an interrupted run')
    parser.add_argument('--keep-state', action='store_true',
                        help='keep <out>.train.pt after finishing')
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        overrides = {name: value for name, value in
                     (('retexture', args.retexture),
                      ('retexture_posterior', args.retexture_posterior),
                      ('cnn_depth', args.cnn_depth)) if value is not None}
        model_config = preset(args.objective, args.size, **overrides)
        train_config = TrainConfig(steps=args.steps, batch=args.batch, seq_len=args.seq_len,
                                   lr=args.lr, seed=args.seed, log_every=args.log_every,
                                   checkpoint_every=args.checkpoint_every)
    except ValueError as exc:
        parser.error(str(exc))

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        data = load_trajectories(args.data)
        sequences = Sequences.from_trajectories(data, model_config.image_size)
        progress(f'data: {sequences.images.shape[0]} episodes x {sequences.images.shape[1]} '
                 f'steps from {args.data}; model {args.objective} ({args.size})')
        if sequences.retextured is None and (model_config.retexture > 0
                                             or model_config.retexture_posterior > 0):
            progress('note: the data has no retextured views (collect with --retextured); '
                     'training without them')
        summary = train(model_config, train_config, sequences, args.out, resume=args.resume,
                        progress=progress,
                        max_seconds=None if args.max_minutes is None else args.max_minutes * 60)
    except (DatasetError, CheckpointError, ValueError, OSError) as exc:
        print(f'embodied-aif train world_model: error: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'interrupted; continue with --resume (state in {train_state_path(args.out)})',
              file=sys.stderr)
        return 130
    if summary['finished'] and not args.keep_state:
        train_state_path(args.out).unlink(missing_ok=True)
    print(json.dumps(summary))
    return 0 if summary['finished'] else 3
