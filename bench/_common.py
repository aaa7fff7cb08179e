"""Shared command-line handling for benchmarks: --seeds A:B, --quick, JSON on stdout."""
import argparse
import json
import sys
import time
from collections.abc import Callable


def seed_range(text: str) -> range:
    """Parse 'A:B' (B exclusive) or a single seed 'A' into a range; raise on bad input."""
    try:
        if ':' in text:
            lo, hi = (int(part) for part in text.split(':', 1))
        else:
            lo = int(text)
            hi = lo + 1
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds must be 'A:B' with integers A < B, got {text!r}") from None
    if hi <= lo:
        raise argparse.ArgumentTypeError(f'--seeds {text!r}: the range is empty (need A < B)')
    return range(lo, hi)


def make_parser(name: str, description: str, default_seeds: str) -> argparse.ArgumentParser:
    """Return an argument parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(prog=f'embodied-aif bench {name}', description=description)
    parser.add_argument('--seeds', type=seed_range, default=seed_range(default_seeds),
                        help=f'seed range A:B, B exclusive (default {default_seeds})')
    parser.add_argument('--quick', action='store_true',
                        help='reduced version that finishes in about a minute')
    return parser


def progress(message: str) -> None:
    """Write a progress line on stderr (stdout carries only the JSON result)."""
    print(message, file=sys.stderr, flush=True)


def run_benchmark(body: Callable[[argparse.Namespace], dict],
                  parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse argv, run body(args) -> figures, print them as one JSON object; 0 on success."""
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        figures = body(args)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports any failure and exits non-zero
        progress(f'{parser.prog}: error: {type(exc).__name__}: {exc}')
        return 1
    figures = dict(figures)
    figures.setdefault('seeds', f'{args.seeds.start}:{args.seeds.stop}')
    figures.setdefault('quick', bool(args.quick))
    figures.setdefault('wall_s', round(time.perf_counter() - start, 3))
    print(json.dumps(figures, sort_keys=True))
    return 0
