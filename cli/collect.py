"""`embodied-aif collect KIND ...`: record training data from this project's simulator."""
from embodied_aif.cli._dispatch import register_dispatch


def register(subparsers) -> None:
    """Add the `collect` subcommand (one module `collect_<kind>.py` per kind of data)."""
    register_dispatch(subparsers, 'collect', 'kind', 'record training data in the simulator')
