"""Discrete active-inference core: state inference, expected free energy, learning.

Pure numpy functions (pymdp's numbers, checked to 1e-5 in test/reference/test_aif_vs_pymdp.py):
:mod:`.model` (the POMDP dataclass), :mod:`.inference` (state posteriors), :mod:`.control`
(policy trees, EFE terms, policy posterior, action choice), :mod:`.learning` (Dirichlet
updates), :mod:`.agent` (one perception-action cycle), :mod:`.gridworld` (test / bench models).
"""
from embodied_aif.models.aif.agent import AgentConfig, AgentState, step
from embodied_aif.models.aif.control import (
    EFETerms,
    PolicyTree,
    action_marginals,
    construct_policies,
    expected_free_energy,
    infer_policies,
    policy_posterior,
    select_action,
)
from embodied_aif.models.aif.inference import infer_states, predict_states
from embodied_aif.models.aif.learning import update_pA, update_pB, update_pD, with_counts
from embodied_aif.models.aif.model import GenerativeModel, uniform_beliefs

__all__ = ['AgentConfig', 'AgentState', 'EFETerms', 'GenerativeModel', 'PolicyTree',
           'action_marginals', 'construct_policies', 'expected_free_energy', 'infer_policies',
           'infer_states', 'policy_posterior', 'predict_states', 'select_action', 'step',
           'uniform_beliefs', 'update_pA', 'update_pB', 'update_pD', 'with_counts']
