"""Entry point of the `embodied-aif` command: one subcommand per module of this package."""
import argparse
import importlib
import sys

# Subcommand modules, in the order `--help` lists them; each defines register(subparsers),
# which adds its parser and sets `func(args) -> int` as the default.
SUBCOMMANDS = ('demo', 'run', 'bench', 'plan', 'select', 'collect', 'train')


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog='embodied-aif',
        description='Active-inference perception, mapping, navigation and task planning for '
                    'mobile manipulators on ROS 2. Each subcommand has its own --help.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f'embodied_aif.cli.{name}').register(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
