"""`embodied-aif select`: choose one plan of a Pareto set by expected free energy or a baseline."""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from embodied_aif.models.selector import (
    METHODS,
    SelectionError,
    candidates_from_dicts,
    preference_from_dict,
    select,
)

PROG = 'embodied-aif select'


def _error(message: str) -> int:
    print(f'{PROG}: error: {message}', file=sys.stderr)
    return 2


def _read_json(path: str):
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SelectionError(f'{path}: cannot read: {exc.strerror}') from None
    try:
        return json.loads(text, parse_constant=_reject)
    except json.JSONDecodeError as exc:
        raise SelectionError(f'{path}: malformed JSON at line {exc.lineno} column {exc.colno}: '
                             f'{exc.msg}') from None
    except ValueError as exc:
        raise SelectionError(f'{path}: {exc}') from None


def _reject(name: str):
    raise ValueError(f'{name} is not a valid number (NaN and infinities are rejected)')


def run(args: argparse.Namespace) -> int:
    """Read plans and preference, select, print the choice and every plan's EFE terms."""
    if args.samples < 2:
        return _error(f'--samples must be >= 2, got {args.samples}')
    if args.epistemic_weight is not None and (not math.isfinite(args.epistemic_weight)
                                              or args.epistemic_weight < 0):
        return _error(f'--epistemic-weight must be a number >= 0, got {args.epistemic_weight}')
    try:
        plans_data = _read_json(args.plans)
        objectives, candidates = candidates_from_dicts(plans_data, args.plans)
        pref_data = _read_json(args.preference)
        if args.epistemic_weight is not None and isinstance(pref_data, dict):
            pref_data = dict(pref_data, epistemic_weight=args.epistemic_weight)
        preference = preference_from_dict(pref_data, args.preference, objectives)
    except SelectionError as exc:
        return _error(str(exc))
    selection = select(candidates, preference, args.method, np.random.default_rng(args.seed),
                       n_samples=args.samples)
    chosen = plans_data['plans'][selection.index]
    out = dict(selection.to_dict(), objectives=list(objectives), plan=chosen)
    if args.json:
        print(json.dumps(out))
    else:
        print(f'method {selection.method}: plan [{selection.index}] '
              f'cost {chosen.get("expected_cost", chosen.get("cost"))}')
        print('  index       efe      risk  dominance  info_gain')
        for t in out['terms']:
            mark = '*' if t['index'] == selection.index else ' '
            print(f'{mark} {t["index"]:5d} {t["efe"]:9.4f} {t["risk"]:9.4f} '
                  f'{t["dominance"]:10.4f} {t["info_gain"]:10.4f}')
    return 0


def register(subparsers) -> None:
    """Add the `select` subcommand."""
    parser = subparsers.add_parser(
        'select', help='choose one plan of a Pareto set (expected free energy or a baseline)',
        description='Choose one plan of PLANS.json (e.g. the output of `embodied-aif plan '
                    '--json`) for the preference in PREFERENCE.json; print the choice and '
                    'every plan\'s EFE terms (efe = risk - epistemic_weight * info_gain; '
                    'risk includes the dominance term of a preference restricted to the '
                    'front). '
                    'Formats: docs/task_planning.md.')
    parser.add_argument('--plans', required=True, metavar='PLANS.json')
    parser.add_argument('--preference', required=True, metavar='PREF.json')
    parser.add_argument('--method', choices=METHODS, default='aif',
                        help='aif (min expected free energy, default), uniform, topsis, weights')
    parser.add_argument('--epistemic-weight', type=float, default=None, metavar='W',
                        help='override the preference\'s epistemic_weight')
    parser.add_argument('--samples', type=int, default=128,
                        help='Monte Carlo samples for the information gain about the choice '
                             '(default 128)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
    parser.set_defaults(func=run)
