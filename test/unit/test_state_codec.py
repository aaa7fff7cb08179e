"""Checkpoint encoding: exact round trips of learned state, clear errors on bad documents."""
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from embodied_aif.models.state_codec import CodecError, decode, encode


@dataclass(frozen=True)
class Link:
    a: int
    b: int
    weight: float
    path: tuple = ()


@dataclass(frozen=True)
class Graph:
    poses: np.ndarray
    links: dict = field(default_factory=dict)
    current: int = -1
    cache: np.ndarray | None = None


def test_round_trip_is_exact_through_json_text():
    graph = Graph(poses=np.array([[0.1, 2.0 / 3.0, np.nan], [np.inf, -np.inf, 1e-300]]),
                  links={(0, 1): Link(0, 1, 0.25, path=((0.0, 0.5), (1.0, 1.5))),
                         (1, 2): Link(1, 2, 1.0)},
                  current=1, cache=np.arange(6, dtype=np.int32).reshape(2, 3))
    text = json.dumps(encode(graph))
    back = decode(json.loads(text), {'Graph': Graph, 'Link': Link})
    assert isinstance(back, Graph) and back.current == 1
    np.testing.assert_array_equal(back.poses, graph.poses)  # nan and inf included
    assert back.poses.dtype == np.float64 and back.cache.dtype == np.int32
    np.testing.assert_array_equal(back.cache, graph.cache)
    assert back.links == graph.links and isinstance(next(iter(back.links)), tuple)
    assert back.links[(0, 1)].path == ((0.0, 0.5), (1.0, 1.5))


def test_bad_input_is_named():
    with pytest.raises(CodecError, match=r"state\['x'\]: cannot encode a set"):
        encode(Graph(poses=np.zeros(1), links={'x': {1, 2}}).links, 'state')
    doc = encode(Graph(poses=np.zeros(2)))
    with pytest.raises(CodecError, match="unknown class 'Graph'"):
        decode(doc, {'Link': Link})
    doc['fields']['poses']['shape'] = [3]
    with pytest.raises(CodecError, match='state.poses: malformed'):
        decode(doc, {'Graph': Graph})
    with pytest.raises(CodecError, match='without a known tag'):
        decode({'what': 1})
