"""Every custom interface type round-trips between two nodes over Fast DDS, field for field."""
import importlib
import inspect
import re
import time

import pytest

import embodied_aif_msgs.action as actions
import embodied_aif_msgs.msg as msgs
import embodied_aif_msgs.srv as srvs


def interface_types():
    """Every message class of embodied_aif_msgs, including action and service parts."""
    types = [cls for _, cls in inspect.getmembers(msgs, inspect.isclass)
             if hasattr(cls, 'get_fields_and_field_types')]
    for module, parts in ((actions, ('Goal', 'Result', 'Feedback')),
                          (srvs, ('Request', 'Response'))):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            types += [getattr(cls, part) for part in parts if hasattr(cls, part)]
    from tf2_msgs.msg import TFMessage

    return types + [TFMessage]


SCALARS = {
    'boolean': lambda i: i % 2 == 1, 'string': lambda i: f's{i}',
    'float': lambda i: 0.5 + i, 'double': lambda i: 0.25 + i,
    'octet': lambda i: bytes([i % 256]),
}
INTS = re.compile(r'^u?int(8|16|32|64)$')


def sample(type_name: str, i: int):
    """A non-default value of a field type string (rosidl introspection names)."""
    seq = re.match(r'^sequence<(.+?)(, \d+)?>$', type_name)
    if seq:
        return [sample(seq.group(1), i + k) for k in range(2)]
    arr = re.match(r'^(.+)\[(\d+)\]$', type_name)
    if arr:
        return [sample(arr.group(1), i + k) for k in range(int(arr.group(2)))]
    if type_name in SCALARS:
        return SCALARS[type_name](i)
    if INTS.match(type_name):
        return i % 100 + 1
    if type_name.startswith('string<'):
        return f's{i}'
    package, name = type_name.split('/')
    return fill(getattr(importlib.import_module(f'{package}.msg'), name)(), i)


def fill(msg, seed=1):
    """Set every field of msg to a distinct non-default value."""
    for k, (field, type_name) in enumerate(msg.get_fields_and_field_types().items()):
        setattr(msg, field, sample(type_name, seed + k))
    return msg


TYPES = interface_types()


def test_every_interface_is_covered():
    names = {t.__name__ for t in TYPES}
    for expected in ('ObjectBelief', 'ObjectBeliefArray', 'Place', 'PlaceEdge', 'CognitiveMap',
                     'TaskSpec', 'PlanStep', 'ParetoPlan', 'ParetoPlanArray', 'Preference',
                     'PlanOutcome', 'Navigate_Goal', 'Pick_Goal', 'Place_Goal', 'TFMessage',
                     'ResetSim_Request'):
        assert expected in names


def _participant(name):
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name, context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return node, executor


def _close(node, executor):
    import rclpy

    context = node.context
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.fixture(scope='module')
def sender():
    """A node in its own context (its own DDS participant), so messages cross the wire."""
    pair = _participant('round_trip_sender')
    yield pair
    _close(*pair)


@pytest.fixture(scope='module')
def receiver():
    """The receiving node, in a second participant."""
    pair = _participant('round_trip_receiver')
    yield pair
    _close(*pair)


@pytest.mark.parametrize('msg_type', TYPES, ids=lambda t: t.__name__)
def test_round_trip_between_two_participants(receiver, sender, msg_type):
    node, executor = sender
    rx_node, rx_executor = receiver
    sent = fill(msg_type())
    assert sent != msg_type(), 'the filled message must differ from the default one'
    received = []
    topic = f'round_trip/{msg_type.__name__.lower()}'
    sub = rx_node.create_subscription(msg_type, topic, received.append, 10)
    pub = node.create_publisher(msg_type, topic, 10)
    deadline = time.monotonic() + 15
    try:
        while not received and time.monotonic() < deadline:
            pub.publish(sent)
            executor.spin_once(timeout_sec=0.0)
            rx_executor.spin_once(timeout_sec=0.05)
    finally:
        node.destroy_publisher(pub)
        rx_node.destroy_subscription(sub)
    assert received, f'nothing arrived on {topic}'
    assert received[0] == sent
