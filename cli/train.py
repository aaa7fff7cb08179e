"""`embodied-aif train MODEL ...`: train a model of models/ from collected data."""
from embodied_aif.cli._dispatch import register_dispatch


def register(subparsers) -> None:
    """Add the `train` subcommand (one module `train_<model>.py` per model)."""
    register_dispatch(subparsers, 'train', 'model', 'train a model from collected data')
