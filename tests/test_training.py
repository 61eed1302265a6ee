import dataclasses

import pytest
import torch

import theory
from theory.networks.score_net import ScoreNet
import copy

from theory.training.dsm import ScoreTrainConfig, eps_loss, log_uniform_times, train
from theory.training.schedule import learning_rate

CFG = ScoreTrainConfig(steps=25, batch_size=64, lr=3e-3, warmup=5, t0=1e-3, checkpoint_every=10)


def test_eps_loss_is_sigma2_times_paper_dsm_loss():
    net = ScoreNet(3, 16, seeds=(0,), dtype=torch.float64)
    with torch.no_grad():
        net.out.weight.normal_(generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x0, z = torch.randn(1, 50, 3, generator=g, dtype=torch.float64), torch.randn(1, 50, 3, generator=g, dtype=torch.float64)
    t = 0.7
    ours = eps_loss(net, x0, torch.full((1, 50), t, dtype=torch.float64), z)[0]
    score = lambda x, tt: net.score(x[None], tt.expand(x.shape[0]))[0]
    paper = theory.dsm_loss(score, x0[0], t, z[0])
    assert torch.allclose(ours, float(theory.sigma2(t)) * paper, rtol=1e-10)


def test_learning_rate_schedule():
    kw = dict(lr=CFG.lr, steps=CFG.steps, warmup=CFG.warmup, final_fraction=CFG.final_lr_fraction)
    assert learning_rate(0, **kw) == pytest.approx(CFG.lr / CFG.warmup)
    assert learning_rate(CFG.warmup, **kw) == pytest.approx(CFG.lr)
    assert learning_rate(CFG.steps, **kw) == pytest.approx(CFG.lr * CFG.final_lr_fraction)
    mid = (CFG.warmup + CFG.steps) / 2
    assert learning_rate(int(mid), **{**kw, "final_fraction": 1.0}) == CFG.lr          # constant after warm-up
    assert learning_rate(CFG.steps, **{**kw, "final_fraction": 0.0}) == 0.0


def _mean_loss(net, data, seed=3):
    g = torch.Generator().manual_seed(seed)
    x0 = data[torch.randint(len(data), (1, 1000), generator=g)]
    t = log_uniform_times((1, 1000), CFG.t0, CFG.T, g)
    with torch.no_grad():
        return float(eps_loss(net, x0, t, torch.randn(1, 1000, data.shape[1], generator=g)).mean())


def test_brief_training_lowers_the_dsm_loss_on_a_gaussian():
    data = theory.GaussianMixture.gaussian(torch.tensor([2.0, -1.0]), torch.diag(torch.tensor([0.5, 2.0]))) \
        .sample(512, 0.0, torch.Generator().manual_seed(0)).float()
    net = ScoreNet(2, 32, seeds=(0,), data_variance=1.0)
    before = _mean_loss(net, data)
    res = train(net, data, dataclasses.replace(CFG, steps=60))
    assert _mean_loss(net, data) < 0.9 * before
    assert res.losses.shape == (60, 1)


def test_ensemble_trains_like_separate_nets():
    data = torch.randn(2, 100, 2, generator=torch.Generator().manual_seed(0))
    ens = ScoreNet(2, 16, seeds=(3, 4))
    train(ens, data, CFG, n_per_member=[100, 60], weight_decay=[0.0, 0.5])
    for e, (seed, n, wd) in enumerate([(3, 100, 0.0), (4, 60, 0.5)]):
        alone = ScoreNet(2, 16, seeds=(seed,))
        train(alone, data[e:e + 1], CFG, n_per_member=[n], weight_decay=wd)
        for pe, pa in zip(ens.parameters(), alone.parameters()):
            assert torch.allclose(pe[e], pa[0], atol=1e-5)


def test_checkpoint_resume_equals_uninterrupted():
    data = torch.randn(80, 2, generator=torch.Generator().manual_seed(0))
    full = ScoreNet(2, 16, seeds=(1,))
    ref = train(full, data, CFG)
    states = []
    first = ScoreNet(2, 16, seeds=(1,))
    train(first, data, CFG, on_checkpoint=lambda s: states.append(copy.deepcopy(s)), stop_after=10)  # "interrupted"
    assert [s["step"] for s in states] == [10, 10]           # every checkpoint_every steps, and at the end
    resumed = ScoreNet(2, 16, seeds=(1,))                    # fresh process: new net from the same seed
    out = train(resumed, data, CFG, resume=states[-1])
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(ref.losses, out.losses)
    for k in ref.ema:
        assert torch.allclose(ref.ema[k], out.ema[k], atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="t0"):
        ScoreTrainConfig(t0=0.0)
    state = {}
    train(ScoreNet(2, 4, seeds=(0,)), torch.zeros(10, 2), CFG, on_checkpoint=state.update, stop_after=1)
    with pytest.raises(ValueError, match="another configuration"):
        train(ScoreNet(2, 4, seeds=(0,)), torch.zeros(10, 2), dataclasses.replace(CFG, lr=1e-3), resume=state)
    with pytest.raises(ValueError, match="data"):
        train(ScoreNet(2, 4, seeds=(0,)), torch.zeros(10, 3), CFG)
