"""Benchmark: speed, memory and agreement of the active-inference core against pymdp.

Both implementations run the same grid-world POMDP (noisy likelihood and slippery moves, and
again with an identity likelihood and exact moves; N = 25, 100, 400 states, 5 actions, policy
lengths 1 and 3) on the same observation / action sequence. Per step the time of state
inference + policy inference is measured; the peak memory of one step is measured with
tracemalloc; the largest absolute difference between the two over posteriors of states,
posteriors of policies and expected free energies is reported.
"""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
from __future__ import annotations

import statistics
import sys
import time
import tracemalloc

import numpy as np

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models.aif.control import PolicyTree, construct_policies, infer_policies
from embodied_aif.models.aif.gridworld import (
    grid_model_arrays,
    sample_next_state,
    sample_observation,
)
from embodied_aif.models.aif.inference import infer_states, predict_states
from embodied_aif.models.aif.model import GenerativeModel

SIDES = {25: (5, 5), 100: (10, 10), 400: (20, 20)}
OBS_NOISE = 0.2
SLIP = 0.1


def _episode(arrays: dict, steps: int, seed: int) -> tuple[list[int], list[int]]:
    """Return observation and (random) action sequences of one episode in the true world."""
    rng = np.random.default_rng(seed)
    A, B = arrays['A'][0], arrays['B'][0]
    state = int(rng.integers(A.shape[1]))
    obs, acts = [], []
    for _ in range(steps):
        obs.append(sample_observation(A, state, rng))
        acts.append(int(rng.integers(B.shape[2])))
        state = sample_next_state(B, state, acts[-1], rng)
    return obs, acts


def _ours(arrays, policy_len, obs, acts):
    model = GenerativeModel(**arrays)
    tree = PolicyTree(construct_policies(model.num_controls, policy_len))
    times, outs = [], []
    qs, action = None, None
    for o, a in zip(obs, acts):
        start = time.perf_counter()
        prior = model.D if action is None else predict_states(model, qs, [action])
        qs = infer_states(model, [o], prior)
        q_pi, terms = infer_policies(model, qs, tree)
        times.append(time.perf_counter() - start)
        outs.append((qs[0], q_pi, terms.efe))
        action = a
    return times, outs


def _pymdp(arrays, policy_len, obs, acts):
    from pymdp.legacy import utils
    from pymdp.legacy.agent import Agent

    def obj(x):
        out = utils.obj_array(1)
        out[0] = x[0]
        return out

    agent = Agent(A=obj(arrays['A']), B=obj(arrays['B']), C=obj(arrays['C']),
                  D=obj(arrays['D']), policy_len=policy_len)
    times, outs = [], []
    for o, a in zip(obs, acts):
        start = time.perf_counter()
        qs = agent.infer_states([o])
        q_pi, neg_efe = agent.infer_policies()
        times.append(time.perf_counter() - start)
        outs.append((qs[0], q_pi, -neg_efe))
        agent.action = np.array([float(a)])
        agent.step_time()
    return times, outs


def _peak_mb(run, arrays, policy_len, obs, acts) -> float:
    """Peak traced memory (MiB) of two steps (model set-up included)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    run(arrays, policy_len, obs[:2], acts[:2])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2 ** 20


def _run_cases(args, seeds, obs_noise, slip, figures, tag) -> float:
    """Time both implementations on every (N, policy length); return the largest difference."""
    steps_ours = 20 if args.quick else 60
    max_diff = 0.0
    for n, (rows, cols) in SIDES.items():
        arrays = grid_model_arrays(rows, cols, obs_noise, slip)
        for policy_len in (1, 3):
            heavy = n == 400 and policy_len == 3
            steps_ref = (3 if heavy else 6) if args.quick else (8 if heavy else 20)
            t_ours, t_ref = [], []
            for seed in seeds:
                obs, acts = _episode(arrays, steps_ours, seed)
                times, outs = _ours(arrays, policy_len, obs, acts)
                ref_times, ref_outs = _pymdp(arrays, policy_len, obs[:steps_ref],
                                             acts[:steps_ref])
                # drop the first step of each (import / cache warm-up)
                t_ours += times[1:]
                t_ref += ref_times[1:]
                for mine, ref in zip(outs, ref_outs):
                    max_diff = max(max_diff, *(float(np.abs(x - y).max())
                                               for x, y in zip(mine, ref)))
            ms_ours = 1e3 * statistics.median(t_ours)
            ms_ref = 1e3 * statistics.median(t_ref)
            key = f'{tag}n{n}_len{policy_len}'
            figures['cases'][key] = {'ms_per_step': round(ms_ours, 4),
                                     'ms_per_step_pymdp': round(ms_ref, 3),
                                     'speedup': round(ms_ref / ms_ours, 2),
                                     'policies': 5 ** policy_len}
            progress(f'{key}: ours {ms_ours:.3f} ms, pymdp {ms_ref:.2f} ms, '
                     f'speed-up {ms_ref / ms_ours:.1f}x')
    return max_diff


def body(args) -> dict:
    """Run every case (noisy model, then identity likelihood) over the seeds."""
    seeds = list(args.seeds)[:1] if args.quick else list(args.seeds)
    figures: dict = {'cases': {}, 'obs_noise': OBS_NOISE, 'slip': SLIP}
    max_diff = _run_cases(args, seeds, OBS_NOISE, SLIP, figures, '')
    max_diff = max(max_diff, _run_cases(args, seeds, 0.0, 0.0, figures, 'identity_'))
    arrays = grid_model_arrays(*SIDES[400], OBS_NOISE, SLIP)
    obs, acts = _episode(arrays, 2, seeds[0])
    figures['peak_mb'] = round(_peak_mb(_ours, arrays, 3, obs, acts), 3)
    figures['peak_mb_pymdp'] = round(_peak_mb(_pymdp, arrays, 3, obs, acts), 3)
    figures['speedup_vs_pymdp_n400_len3'] = figures['cases']['n400_len3']['speedup']
    figures['speedup_vs_pymdp_n400_len3_identity'] = \
        figures['cases']['identity_n400_len3']['speedup']
    figures['max_abs_diff_vs_pymdp'] = max_diff
    progress(f"peak MiB ours {figures['peak_mb']}, pymdp {figures['peak_mb_pymdp']}; "
             f'max |diff| {max_diff:.3g}')
    return figures


def main(argv=None) -> int:
    """Run the benchmark; print one JSON object on stdout."""
    parser = make_parser('aif_core', __doc__.splitlines()[0], default_seeds='0:3')
    return run_benchmark(body, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
