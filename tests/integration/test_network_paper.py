"""The paper's 29 M-parameter architecture: batch-norm folding and TF1 ops (seconds per check).

The other architectures are checked in tests/unit/test_network.py.
"""

import pytest

from helpers import check_folded_inference_graph, check_tf1_classifier_ops

pytestmark = pytest.mark.tensorflow


def test_folded_inference_graph_matches_the_trained_network():
    check_folded_inference_graph("paper")


def test_inference_graph_uses_only_tf1_classifier_ops():
    check_tf1_classifier_ops("paper")
