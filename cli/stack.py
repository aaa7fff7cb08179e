"""Stack configuration: which nodes run, with which parameters, remappings and namespace.

One YAML file describes a graph of nodes; `embodied-aif run`, `embodied-aif demo` and the
`ros2 launch` files all read it through this module, so the three never drift. Format:

    stack:
      namespace: ""              # robot namespace ("" = root)
      use_sim_time: true
      params_files: [nodes.yaml, sim.yaml]   # Nav2-style, relative to this file; later wins
      nodes:
        sim_bridge:              # the node's name; module defaults to embodied_aif.nodes.<name>
          remappings: {cmd_vel: /teleop/cmd_vel}
          parameters: {physics_rate: 240.0}  # overrides the params files
        perception: {enabled: false}

A params file holds `<node name>: {ros__parameters: {...}}` blocks (Nav2 style).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NODE_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
NAMESPACE = re.compile(r'^(/?[A-Za-z][A-Za-z0-9_]*)*/?$')
STACK_KEYS = {'namespace', 'use_sim_time', 'params_files', 'nodes'}
NODE_KEYS = {'module', 'remappings', 'parameters', 'enabled', 'threads'}


class StackError(ValueError):
    """A stack configuration problem; the message names the file and the key."""


@dataclass
class NodeEntry:
    """One node of the stack, resolved: what to import and how to start it."""

    name: str
    module: str
    namespace: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)

    def remap_args(self) -> list[str]:
        """`-r from:=to` pairs for the remappings."""
        return [arg for src, dst in self.remappings.items() for arg in ('-r', f'{src}:={dst}')]

    def ros_args(self) -> list[str]:
        """Command-line ROS arguments for namespace and remappings (no parameters)."""
        ns = ['-r', f'__ns:={self.namespace}'] if self.namespace else []
        return ['--ros-args', *ns, *self.remap_args()]


@dataclass
class Stack:
    """A resolved stack: the nodes to run and where the configuration came from."""

    path: Path
    namespace: str
    use_sim_time: bool
    nodes: list[NodeEntry]

    def select(self, names: list[str]) -> Stack:
        """Return the stack restricted to the named nodes (error on unknown names)."""
        known = {entry.name: entry for entry in self.nodes}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise StackError(f"{self.path}: unknown node(s) {', '.join(unknown)}; "
                             f"this stack has: {', '.join(known) or 'none'}")
        return Stack(self.path, self.namespace, self.use_sim_time, [known[n] for n in names])


def _read_yaml(path: Path, what: str) -> dict:
    if not path.is_file():
        raise StackError(f'{path}: {what} not found')
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StackError(f'{path}: malformed YAML: {exc}') from None
    if not isinstance(data, dict):
        raise StackError(f'{path}: expected a mapping at the top level, got {type(data).__name__}')
    return data


def _normalise_namespace(ns: str, where: str) -> str:
    if not isinstance(ns, str) or not NAMESPACE.match(ns):
        raise StackError(f'{where}: invalid namespace {ns!r} (use names like /robot1)')
    ns = ns.strip('/')
    return f'/{ns}' if ns else ''


def _params_from_files(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Merge Nav2-style parameter files: {node: {param: value}}, later files win."""
    merged: dict[str, dict[str, Any]] = {}
    for path in files:
        data = _read_yaml(path, 'parameter file')
        for node, block in data.items():
            if not isinstance(block, dict) or set(block) != {'ros__parameters'} \
                    or not isinstance(block['ros__parameters'], dict):
                raise StackError(f'{path}: {node}: expected `ros__parameters:` with a mapping')
            merged.setdefault(str(node).lstrip('/'), {}).update(block['ros__parameters'])
    return merged


def load_stack(path: str | Path, namespace: str | None = None,
               use_sim_time: bool | None = None) -> Stack:
    """Load and validate a stack file; `namespace`/`use_sim_time` override the file's values."""
    path = Path(path).resolve()
    data = _read_yaml(path, 'stack configuration')
    if set(data) != {'stack'} or not isinstance(data['stack'], dict):
        raise StackError(f'{path}: expected a single top-level key `stack` with a mapping')
    stack = data['stack']
    extra = set(stack) - STACK_KEYS
    if extra:
        raise StackError(f"{path}: stack: unknown key(s) {', '.join(sorted(extra))} "
                         f"(known: {', '.join(sorted(STACK_KEYS))})")
    ns = _normalise_namespace(stack.get('namespace', '') if namespace is None else namespace,
                              f'{path}: stack.namespace')
    sim_time = stack.get('use_sim_time', False) if use_sim_time is None else use_sim_time
    if not isinstance(sim_time, bool):
        raise StackError(f'{path}: stack.use_sim_time: expected true or false, got {sim_time!r}')
    files = stack.get('params_files', []) or []
    if not isinstance(files, list):
        raise StackError(f'{path}: stack.params_files: expected a list of file names')
    file_params = _params_from_files([path.parent / str(f) for f in files])
    nodes = stack.get('nodes')
    if not isinstance(nodes, dict) or not nodes:
        raise StackError(f'{path}: stack.nodes: expected a mapping of node names')
    entries = []
    for name, spec in nodes.items():
        where = f'{path}: stack.nodes.{name}'
        spec = {} if spec is None else spec
        if not isinstance(name, str) or not NODE_NAME.match(name):
            raise StackError(f'{where}: invalid node name')
        if not isinstance(spec, dict):
            raise StackError(f'{where}: expected a mapping, got {spec!r}')
        extra = set(spec) - NODE_KEYS
        if extra:
            raise StackError(f"{where}: unknown key(s) {', '.join(sorted(extra))} "
                             f"(known: {', '.join(sorted(NODE_KEYS))})")
        if not spec.get('enabled', True):
            continue
        remaps = spec.get('remappings', {}) or {}
        params = spec.get('parameters', {}) or {}
        if not isinstance(remaps, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in remaps.items()):
            raise StackError(f'{where}.remappings: expected a mapping of topic names')
        if not isinstance(params, dict):
            raise StackError(f'{where}.parameters: expected a mapping')
        merged = {**file_params.get(name, {}), **params, 'use_sim_time': sim_time}
        entries.append(NodeEntry(name=name, module=spec.get('module', f'embodied_aif.nodes.{name}'),
                                 namespace=ns, parameters=merged, remappings=dict(remaps)))
    return Stack(path=path, namespace=ns, use_sim_time=sim_time, nodes=entries)


def node_class(entry: NodeEntry, path: Path):
    """Import the entry's module and return its NODE_CLASS (error names the node and module)."""
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        raise StackError(f'{path}: stack.nodes.{entry.name}: cannot import module '
                         f'{entry.module!r}: {exc}') from None
    cls = getattr(module, 'NODE_CLASS', None)
    if cls is None:
        raise StackError(f'{path}: stack.nodes.{entry.name}: module {entry.module!r} '
                         f'defines no NODE_CLASS')
    return cls


def validate(stack: Stack) -> None:
    """Import every node, check its parameters against the node's declared specs.

    Integers given for float parameters become floats (ROS parameters are strictly typed).
    """
    from embodied_aif.nodes._common import coerce_parameters, validate_parameters

    problems = []
    for entry in stack.nodes:
        specs = getattr(node_class(entry, stack.path), 'PARAMETERS', ())
        for why in validate_parameters(specs, entry.parameters):
            problems.append(f'{stack.path}: {entry.name}.{why}')
        entry.parameters = coerce_parameters(specs, entry.parameters)
    if problems:
        raise StackError('\n'.join(problems))


def default_config_dir() -> Path:
    """The config/ folder: the source tree's when run from it, else the installed share."""
    here = Path(__file__).resolve().parent.parent / 'config'
    if here.is_dir():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory('embodied_aif')) / 'config'
