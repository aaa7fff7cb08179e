"""`embodied-aif run`: start the nodes of a stack, composed in one process or one per node."""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from embodied_aif.cli.stack import Stack, StackError, default_config_dir, load_stack, node_class

RESPAWN_DELAY_S = (0.5, 8.0)  # first and longest delay before restarting a dead node process
STOP_GRACE_S = 5.0


def log(message: str) -> None:
    """Progress for the user, on stderr."""
    print(f'[embodied-aif run] {message}', file=sys.stderr, flush=True)


def compose(stack: Stack, context) -> list:
    """Create every node of the stack in one rclpy context (for a shared executor).

    If one node fails to start, the ones already created are destroyed and the error re-raised:
    nothing is left half-started.
    """
    from rclpy.parameter import Parameter

    classes = [node_class(entry, stack.path) for entry in stack.nodes]
    nodes = []
    try:
        for entry, cls in zip(stack.nodes, classes, strict=True):
            remaps = entry.remap_args()
            # what a node class needs when it shares the process (and its interpreter lock)
            params = {**entry.parameters, **getattr(cls, 'COMPOSED_PARAMETERS', {})}
            nodes.append(cls(namespace=entry.namespace or None, context=context,
                             cli_args=['--ros-args', *remaps] if remaps else None,
                             use_global_arguments=False,
                             parameter_overrides=[Parameter(k, value=v)
                                                  for k, v in params.items()]))
            log(f'composed {entry.namespace}/{entry.name}')
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def run_composed(stack: Stack, duration: float | None, threads: int) -> int:
    """Compose every node in this process, each on an executor of its own; 0 on a clean stop."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from embodied_aif.nodes._common import IsolatedExecutors

    rclpy.init()
    nodes, executors = [], None
    try:
        nodes = compose(stack, None)
        executors = IsolatedExecutors(nodes, threads)
        executors.start()
        deadline = None if duration is None else time.monotonic() + duration
        while rclpy.ok() and executors.error is None \
                and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
        if executors.error is not None:
            raise executors.error
        if not rclpy.ok():  # Ctrl-C shut the context down
            log('interrupted, shutting down')
    except (KeyboardInterrupt, ExternalShutdownException):
        log('interrupted, shutting down')
    finally:
        if executors is not None:
            executors.stop()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    log('stopped')
    return 0


class _Child:
    """One node process and its respawn state."""

    def __init__(self, name: str, command: list[str]):
        self.name = name
        self.command = command
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.next_start = 0.0
        self.failed = False

    def start(self) -> None:
        # A new session: terminal Ctrl-C reaches only the supervisor, which forwards it.
        self.process = subprocess.Popen(self.command, start_new_session=True)
        log(f'started {self.name} (pid {self.process.pid})')


def _stop_all(children: list[_Child]) -> None:
    alive = [c.process for c in children if c.process and c.process.poll() is None]
    for proc in alive:
        proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in alive:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Supervisor:
    """One process per node of a stack: start, respawn (with back-off) when asked, stop.

    poll() does one round of supervision; the caller loops (run_processes with signal
    handling, or the demo in a thread of its own).
    """

    def __init__(self, stack: Stack, respawn: bool):
        self.workdir = Path(tempfile.mkdtemp(prefix='embodied_aif_run_'))
        self.respawn = respawn
        self.children = []
        for entry in stack.nodes:
            node_class(entry, stack.path)  # fail before anything starts if a module is broken
            params_file = self.workdir / f'{entry.name}.yaml'
            params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters':
                                                           entry.parameters}}))
            command = [sys.executable, '-m', entry.module, *entry.ros_args(),
                       '--params-file', str(params_file)]
            self.children.append(_Child(entry.name, command))

    def start(self) -> None:
        """Start every node process."""
        for child in self.children:
            child.start()

    def pids(self) -> dict[str, int]:
        """Process id of each running node."""
        return {c.name: c.process.pid for c in self.children
                if c.process is not None and c.process.poll() is None}

    def restarts(self) -> dict[str, int]:
        """How many times each node was respawned."""
        return {c.name: c.restarts for c in self.children}

    def poll(self) -> bool:
        """Respawn what died (when asked); False once every node has failed for good."""
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.next_start:
                    child.start()
                continue
            code = child.process.poll()
            if code is None or child.failed:
                continue
            if self.respawn:
                delay = min(RESPAWN_DELAY_S[1], RESPAWN_DELAY_S[0] * 2 ** child.restarts)
                child.restarts += 1
                child.process = None
                child.next_start = now + delay
                log(f'{child.name} exited with status {code}; respawning in {delay:.1f} s '
                    f'(restart {child.restarts})')
            else:
                child.failed = True
                log(f'{child.name} exited with status {code} (no --respawn)')
        return not all(c.failed for c in self.children)

    @property
    def failed(self) -> bool:
        """Whether some node exited and was not respawned."""
        return any(c.failed for c in self.children)

    def stop(self) -> None:
        """Stop every node (SIGINT, then SIGKILL after a grace period)."""
        _stop_all(self.children)


def run_processes(stack: Stack, duration: float | None, respawn: bool) -> int:
    """Start one process per node, supervise (respawn if asked), stop all on Ctrl-C."""
    supervisor = Supervisor(stack, respawn)
    stopping = False

    def request_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if duration is None else time.monotonic() + duration
    try:
        supervisor.start()
        while not stopping and (deadline is None or time.monotonic() < deadline):
            if not supervisor.poll():
                break
            time.sleep(0.05)
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log('stopped')
    return 1 if supervisor.failed else 0


def execute(args: argparse.Namespace) -> int:
    """Load, validate and run the stack named by the arguments."""
    try:
        stack = load_stack(args.config, namespace=args.namespace,
                           use_sim_time=args.use_sim_time)
        if args.nodes:
            stack = stack.select([n.strip() for n in args.nodes.split(',') if n.strip()])
        from embodied_aif.cli.stack import validate

        validate(stack)
    except StackError as exc:
        print(f'embodied-aif run: error: {exc}', file=sys.stderr)
        return 2
    if args.respawn and not args.processes:
        print('embodied-aif run: error: --respawn needs --processes', file=sys.stderr)
        return 2
    names = ', '.join(e.name for e in stack.nodes)
    log(f"{'processes' if args.processes else 'composed'}: {names} "
        f"(namespace '{stack.namespace or '/'}', use_sim_time={stack.use_sim_time})")
    if args.processes:
        return run_processes(stack, args.duration, args.respawn)
    return run_composed(stack, args.duration, args.threads)


def positive_float(text: str) -> float:
    """Argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None
    if not 0 < value < float('inf'):
        raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}')
    return value


def register(subparsers) -> None:
    """Add the `run` subcommand."""
    parser = subparsers.add_parser(
        'run', help='start the nodes of a stack configuration',
        description='Start the nodes of a stack configuration (see config/*.yaml), composed in '
                    'one process, each node on an executor of its own (default), or one process '
                    'per node. '
                    'Ctrl-C stops everything cleanly.')
    parser.add_argument('--config', default=str(default_config_dir() / 'sim.yaml'),
                        help='stack configuration file (default: config/sim.yaml)')
    parser.add_argument('--nodes', help='comma-separated subset of the stack\'s nodes to start')
    parser.add_argument('--processes', action='store_true', help='one process per node')
    parser.add_argument('--respawn', action='store_true',
                        help='with --processes: restart a node process that dies')
    parser.add_argument('--namespace', help='robot namespace (overrides the configuration)')
    sim_time = parser.add_mutually_exclusive_group()
    sim_time.add_argument('--use-sim-time', dest='use_sim_time', action='store_true',
                          default=None, help='nodes follow /clock')
    sim_time.add_argument('--no-sim-time', dest='use_sim_time', action='store_false',
                          help='nodes follow the wall clock')
    parser.add_argument('--duration', type=positive_float,
                        help='stop after this many seconds (default: run until Ctrl-C)')
    parser.add_argument('--threads', type=int, default=2,
                        help="threads of each node's executor in composed mode (default 2)")
    parser.set_defaults(func=execute)
