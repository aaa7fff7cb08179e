"""`embodied-aif plan`: every Pareto-optimal plan of a JSON transition system for an LTLf task."""
import argparse
import json
import math
import sys

from embodied_aif.models.ltl import LTLSyntaxError
from embodied_aif.models.pareto import TaskError, plan
from embodied_aif.models.transition_system import ModelError, load_model

PROG = 'embodied-aif plan'


def _error(message: str) -> int:
    print(f'{PROG}: error: {message}', file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Load the model, plan and print the Pareto set; return the exit status.

    0 on success, 1 if the task cannot be satisfied, 2 on bad input.
    """
    if not math.isfinite(args.optimism) or args.optimism < 0:
        return _error(f'--optimism must be a finite number >= 0, got {args.optimism}')
    try:
        ts = load_model(args.model)
        result = plan(ts, args.task, optimism=args.optimism)
    except LTLSyntaxError as exc:
        return _error(f'--task: {exc}')
    except TaskError as exc:
        return _error(f'--task: {exc}')
    except ModelError as exc:
        return _error(str(exc))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        _print_table(result)
    if not result.satisfiable:
        print(f'{PROG}: unsatisfiable: {result.reason}', file=sys.stderr)
        return 1
    return 0


def _print_table(result) -> None:
    if not result.satisfiable:
        print(f'no plan: {result.reason}')
        return
    header = ', '.join(result.objectives)
    print(f'{len(result.plans)} Pareto-optimal plan(s) for {result.formula!r} '
          f'(cost: {header}):')
    for i, p in enumerate(result.plans):
        cost = ', '.join(f'{c:g}' for c in p.cost)
        print(f'  [{i}] ({cost})  {" -> ".join(p.states)}')
        print(f'       actions: {" ".join(p.actions) or "(none: the task already holds)"}')


def register(subparsers) -> None:
    """Add the `plan` subcommand."""
    parser = subparsers.add_parser(
        'plan', help='Pareto-optimal plans of a JSON transition system for an LTLf task',
        description='Compute every Pareto-optimal plan (one per distinct cost vector) of a '
                    'deterministic transition system (MODEL.json) for an LTLf task. Formats: '
                    'docs/task_planning.md. Exit status 0: plans found; 1: the task cannot be '
                    'satisfied (the reason is printed); 2: bad input.')
    parser.add_argument('--model', required=True, metavar='MODEL.json',
                        help='transition system: objectives, initial, states, transitions')
    parser.add_argument('--task', required=True, metavar='FORMULA',
                        help="LTLf formula, e.g. 'F (at_kitchen & F at_table) & G !hazard'")
    parser.add_argument('--optimism', type=float, default=0.0, metavar='ALPHA',
                        help='plan on lower-confidence-bound costs mu - ALPHA sqrt(log k / n) '
                             '(default 0: mean costs)')
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
    parser.set_defaults(func=run)
