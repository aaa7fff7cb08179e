"""Bookkeeping of `bench active_vision`: each true object counted once in category accuracy."""
from types import SimpleNamespace

import numpy as np

from embodied_aif.bench.active_vision import CATEGORIES, _category_pairs, _summarise


def _track(xy, category, n_detections):
    probs = np.full(len(CATEGORIES), 0.01)
    probs[CATEGORIES.index(category)] = 1.0
    return SimpleNamespace(mean=np.array([*xy, 0.65]), category_probs=probs / probs.sum(),
                           n_detections=n_detections)


def _truth(*objects):
    return SimpleNamespace(objects=[SimpleNamespace(position=np.array([*xy, 0.62]), category=c)
                                    for xy, c in objects])


def test_duplicate_tracks_count_once_by_the_track_with_most_detections():
    truth = _truth(((0.7, 0.0), 'mug'), ((0.9, 0.3), 'can'), ((0.5, -0.3), 'box'))
    scene = SimpleNamespace(objects=[
        _track((0.71, 0.01), 'can', 2),     # a short-lived duplicate of the mug, wrong
        _track((0.70, -0.01), 'mug', 9),    # the mug's main track
        _track((0.90, 0.32), 'can', 5),
        _track((0.92, 0.29), 'can', 5),     # the can twice, tie on detections: nearer wins
        _track((2.0, 2.0), 'duck', 7),      # nowhere near a true object: not counted
    ])
    views = [((0.7, 0.0), CATEGORIES.index('can')), ((0.5, -0.3), CATEGORIES.index('box'))]
    fused, single, duplicated = _category_pairs(scene, views, truth)
    assert sorted(fused) == [('can', 'can'), ('mug', 'mug')]
    assert duplicated == 2
    assert single == [('mug', 'can'), ('box', 'box')]
    # no scene (the random agent): nothing counted
    assert _category_pairs(None, [], truth) == ([], [], 0)


def test_summary_reports_accuracy_per_object_and_the_duplicate_rate():
    row = {'agent': 'aif', 'n_objects': 3, 'success': True, 'steps': 10, 'azimuth_error': 0.1,
           'elevation_error': 0.1, 'range_error': 0.01, 'wall_s': 1.0, 'perception_ms': [5.0],
           'category_pairs': [('mug', 'mug'), ('can', 'box')],
           'view_category_pairs': [('mug', 'mug')], 'duplicated_objects': 1}
    out = _summarise([row, dict(row, duplicated_objects=0)])
    assert out['category_accuracy'] == 0.5
    assert out['objects_tracked'] == 4
    assert out['duplicate_track_rate'] == 0.25
    assert out['category_accuracy_view'] == 1.0
