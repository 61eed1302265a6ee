"""Training sets of the mixture experiments (verify._gmm.member_training_set): exact duplicates, nested
prefixes of one per-seed stream, and independence from the ensemble a member trains in."""

import pytest
import torch

import theory
from theory.training.dsm import ScoreTrainConfig
from verify import _gmm
from verify._gmm import member_training_set as training_set

pytestmark = pytest.mark.usefixtures("one_thread")


def test_copies_repeat_the_first_points_of_the_stream():
    truth = theory.paper_mixture(4, 2, separation=2.0, seed=0)
    plain = training_set(truth, seed=3, n=20)
    dup = training_set(truth, seed=3, n=20, copies=12)
    assert dup.shape == (20, 2)
    assert torch.equal(dup[:8], plain[:8])                      # the n - m distinct points are the same draws
    assert torch.unique(dup, dim=0).shape[0] == 8               # only n - m distinct among the n
    assert all(bool((plain[:8] == row).all(1).any()) for row in dup[8:])  # every copy is one of them


def test_sets_of_one_seed_are_nested_and_depend_only_on_seed_and_n():
    truth = theory.paper_mixture(4, 3, separation=2.0, seed=0)
    big = training_set(truth, seed=1, n=200)                     # spans several stream blocks
    for n in (1, 63, 64, 65, 130):
        assert torch.equal(training_set(truth, seed=1, n=n), big[:n])
    assert not torch.equal(training_set(truth, seed=2, n=50), big[:50])


def test_copies_are_validated():
    truth = theory.paper_mixture(2, 2, seed=0)
    with pytest.raises(ValueError, match="copies"):
        training_set(truth, seed=0, n=5, copies=5)


def test_a_members_rows_do_not_depend_on_the_ensemble_it_trains_in():
    """The same member (seed, n) trained alone and beside members with other seeds, a larger n, copies and
    weight decay: same training set, same trajectory (to round-off), same samples and baselines."""
    tc = ScoreTrainConfig(steps=40, batch_size=32, lr=5e-3, warmup=5, t0=1e-4, T=10.0)
    gd = _gmm.GMMDefaults(n_generated=40, n_anchor=10, n_test=8, sample_steps=6, loglik_steps=2,
                          index_times=(1e-2, 1.0), index_samples=30)
    me = {"seed": 1, "n": 24}
    kw = dict(dim=3, n_components=4, width=16, train_cfg=tc, defaults=gd)
    alone = _gmm.run_group(members=[me], **kw)[0]
    crowd = _gmm.run_group(members=[{"seed": 0, "n": 60, "weight_decay": 0.3}, me, {"seed": 2, "n": 40, "copies": 10}],
                           **kw)[1]
    for key in ("mem_count", "null_count", "anchor_count", "n_distinct"):
        assert alone[key] == crowd[key], key
    for key in ("final_loss", "sample_logp_true", "ref_logp_true", "test_loglik_median", "t_star"):
        assert alone[key] == pytest.approx(crowd[key], rel=1e-4, abs=1e-6), key
    assert [p["index"] for p in alone["profile"]] == pytest.approx([p["index"] for p in crowd["profile"]], rel=1e-4)
