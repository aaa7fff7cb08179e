"""One perception-action cycle, as a pure function: ``step(model, tree, state, obs, rng)``.

The state carries the current beliefs and the last action; the cycle is infer_states (with the
empirical prior predicted from the last action) -> infer_policies -> select_action.
"""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied_aif.models.aif.control import PolicyTree, infer_policies, select_action
from embodied_aif.models.aif.inference import infer_states, predict_states
from embodied_aif.models.aif.model import GenerativeModel


@dataclass(frozen=True)
class AgentConfig:
    """Precision and switches of the policy posterior and the state-inference iteration."""

    gamma: float = 16.0
    alpha: float | None = None
    use_utility: bool = True
    use_states_info_gain: bool = True
    use_param_info_gain: bool = False
    num_iter: int = 10
    df_tol: float = 1e-3

    def __post_init__(self):
        if not self.gamma >= 0:
            raise ValueError(f'gamma must be >= 0, got {self.gamma}')
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f'alpha must be > 0 or None, got {self.alpha}')
        if self.num_iter < 1 or not self.df_tol >= 0:
            raise ValueError(f'need num_iter >= 1 and df_tol >= 0, got {self.num_iter}, '
                             f'{self.df_tol}')


@dataclass(frozen=True)
class AgentState:
    """Beliefs over hidden states after the last observation and the action taken since."""

    qs: tuple | None = None
    action: np.ndarray | None = None
    t: int = 0


def step(model: GenerativeModel, tree: PolicyTree, state: AgentState, obs,
         rng: np.random.Generator, config: AgentConfig = AgentConfig(),  # noqa: B008
         E: np.ndarray | None = None) -> tuple[AgentState, np.ndarray, dict]:
    """Return (new state, action, info) after observing ``obs``; info holds qs, q_pi and EFE."""
    if state.action is None or state.qs is None:
        prior = model.D
    else:
        prior = predict_states(model, list(state.qs), state.action)
    qs = infer_states(model, obs, prior, config.num_iter, config.df_tol)
    q_pi, terms = infer_policies(model, qs, tree, config.gamma, E, config.use_utility,
                                 config.use_states_info_gain, config.use_param_info_gain)
    action = select_action(q_pi, tree.policies, model.num_controls, rng, config.alpha)
    new_state = AgentState(qs=tuple(qs), action=action, t=state.t + 1)
    return new_state, action, {'qs': qs, 'q_pi': q_pi, 'efe': terms}


__all__ = ['AgentConfig', 'AgentState', 'step']
