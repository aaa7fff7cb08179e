"""Learned state <-> JSON, exactly: numpy arrays, tuples, dicts with any keys, dataclasses.

Checkpoints of models (the cognitive map, cost memories) must survive a restart bit for bit
and must never execute anything when read, so this is a small tagged JSON encoding rather
than pickle. Dataclasses are rebuilt only from the classes the caller names.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np


class CodecError(ValueError):
    """State that cannot be encoded or a document that does not decode; says where."""


def _float(x: float):
    if math.isfinite(x):
        return x
    return {'__float__': repr(x)}  # nan, inf, -inf


def encode(obj, where: str = 'state'):
    """A JSON-ready form of obj (raises CodecError naming the path of what is not supported)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in 'biuf':
            raise CodecError(f'{where}: arrays of dtype {obj.dtype} are not supported')
        flat = [_float(float(v)) if obj.dtype.kind == 'f' else int(v) for v in obj.ravel()]
        return {'__array__': flat, 'dtype': obj.dtype.str, 'shape': list(obj.shape)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {'__dataclass__': type(obj).__name__,
                'fields': {f.name: encode(getattr(obj, f.name), f'{where}.{f.name}')
                           for f in dataclasses.fields(obj)}}
    if isinstance(obj, tuple):
        return {'__tuple__': [encode(v, f'{where}[{i}]') for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode(v, f'{where}[{i}]') for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        return {'__dict__': [[encode(k, f'{where} key'), encode(v, f'{where}[{k!r}]')]
                             for k, v in obj.items()]}
    raise CodecError(f'{where}: cannot encode a {type(obj).__name__}')


def decode(doc, classes: Mapping[str, type] = (), where: str = 'state'):
    """Rebuild what encode() made; dataclasses only from `classes` {name: class}."""
    classes = dict(classes)
    if doc is None or isinstance(doc, (bool, int, float, str)):
        return doc
    if isinstance(doc, list):
        return [decode(v, classes, f'{where}[{i}]') for i, v in enumerate(doc)]
    if not isinstance(doc, dict):
        raise CodecError(f'{where}: unexpected {type(doc).__name__}')
    try:
        if '__float__' in doc:
            return float(doc['__float__'])
        if '__array__' in doc:
            values = [float(v['__float__']) if isinstance(v, dict) else v
                      for v in doc['__array__']]
            return np.array(values, dtype=np.dtype(doc['dtype'])).reshape(doc['shape'])
        if '__tuple__' in doc:
            return tuple(decode(v, classes, f'{where}[{i}]')
                         for i, v in enumerate(doc['__tuple__']))
        if '__dict__' in doc:
            return {_hashable(decode(k, classes, f'{where} key')):
                    decode(v, classes, f'{where}[{k!r}]') for k, v in doc['__dict__']}
        if '__dataclass__' in doc:
            name = doc['__dataclass__']
            if name not in classes:
                raise CodecError(f'{where}: unknown class {name!r} (known: {sorted(classes)})')
            fields = {k: decode(v, classes, f'{where}.{k}') for k, v in doc['fields'].items()}
            return classes[name](**fields)
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f'{where}: malformed ({type(exc).__name__}: {exc})') from None
    raise CodecError(f'{where}: an object without a known tag')


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
