"""Subcommands that dispatch to one module per kind: `collect KIND`, `train MODEL`.

`embodied-aif collect objects ...` runs `embodied_aif.cli.collect_objects.main(argv)`; a new kind
is a new module `collect_<kind>.py` (or `train_<model>.py`) with a `main(argv) -> int`, a
module docstring whose first line is its help, and nothing to register.
"""
import argparse
import importlib
import pkgutil

import embodied_aif.cli as cli_package


def kinds(prefix: str) -> dict[str, str]:
    """Map each kind of `<prefix>_<kind>.py` in this package to its module name."""
    return {m.name[len(prefix) + 1:]: m.name for m in pkgutil.iter_modules(cli_package.__path__)
            if m.name.startswith(prefix + '_')}


def _summary(module_name: str) -> str:
    doc = importlib.import_module(f'embodied_aif.cli.{module_name}').__doc__ or ''
    return doc.strip().splitlines()[0] if doc.strip() else ''


def register_dispatch(subparsers, prefix: str, what: str, help_text: str) -> None:
    """Add the subcommand `prefix` whose first argument picks the module that does the work."""
    found = kinds(prefix)
    listing = '; '.join(f'{kind}: {_summary(name)}' for kind, name in sorted(found.items()))
    parser = subparsers.add_parser(
        prefix, help=help_text,
        description=f'{help_text}. Each {what} has its own --help. Available: {listing}.')
    parser.add_argument(what, help=f"{what} ({', '.join(sorted(found)) or 'none'})")
    parser.add_argument('args', nargs=argparse.REMAINDER, help=f'arguments for the {what}')

    def run(args: argparse.Namespace) -> int:
        name = getattr(args, what)
        if name not in found:
            print(f'embodied-aif {prefix}: unknown {what} {name!r}; '
                  f"available: {', '.join(sorted(found)) or 'none'}")
            return 2
        module = importlib.import_module(f'embodied_aif.cli.{found[name]}')
        return int(module.main(args.args) or 0)

    parser.set_defaults(func=run)
