"""`embodied-aif bench NAME [ARGS]`: run a benchmark of bench/ (one JSON object on stdout)."""
import argparse
import importlib
import pkgutil

import embodied_aif.bench as bench_package


def available() -> list[str]:
    """Names of the benchmarks (modules of embodied_aif.bench not starting with '_')."""
    return sorted(m.name for m in pkgutil.iter_modules(bench_package.__path__)
                  if not m.name.startswith('_'))


def run(args: argparse.Namespace) -> int:
    """Import the named benchmark and call its main(argv)."""
    names = available()
    if args.name not in names:
        print(f"embodied-aif bench: unknown benchmark {args.name!r}; "
              f"available: {', '.join(names) or 'none'}")
        return 2
    module = importlib.import_module(f'embodied_aif.bench.{args.name}')
    return int(module.main(args.bench_args) or 0)


def register(subparsers) -> None:
    """Add the `bench` subcommand."""
    parser = subparsers.add_parser(
        'bench', help='run a benchmark (prints one JSON object of figures)',
        description='Run a benchmark of bench/. Every benchmark takes --seeds A:B and --quick '
                    f"and prints one JSON object on stdout. Available: {', '.join(available())}.")
    parser.add_argument('name', help='benchmark name')
    parser.add_argument('bench_args', nargs=argparse.REMAINDER,
                        help='arguments passed to the benchmark (--seeds A:B, --quick, ...)')
    parser.set_defaults(func=run)
