"""Training sets with exact duplicates for the mixture experiments (verify._gmm.member_training_set)."""

import pytest
import torch

import theory
from verify._gmm import member_training_set as training_set


def test_copies_repeat_the_first_points_and_keep_the_stream():
    truth = theory.paper_mixture(4, 2, separation=2.0, seed=0)
    plain = training_set(truth, 40, seed=3, n=20)
    dup = training_set(truth, 40, seed=3, n=20, copies=12)
    assert torch.equal(dup[:8], plain[:8])                      # the n - m distinct points are the same draws
    assert torch.unique(dup[:20], dim=0).shape[0] == 8          # only n - m distinct among the n
    assert all(bool((plain[:8] == row).all(1).any()) for row in dup[8:20])  # every copy is one of them
    assert torch.equal(dup[20:], plain[20:])                    # unused tail unchanged


def test_copies_are_validated():
    truth = theory.paper_mixture(2, 2, seed=0)
    with pytest.raises(ValueError, match="copies"):
        training_set(truth, 10, seed=0, n=5, copies=5)
