"""Discrete active-inference core: state inference, expected free energy, learning."""
