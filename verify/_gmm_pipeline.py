"""The shared pipeline of the Gaussian-mixture memorization sweeps: train on n samples, sample, measure.

One call trains an ensemble of score nets of one width (members differ by seed, training-set size n
and weight decay), samples each member with the probability-flow ODE (or the reverse SDE) from T to t0,
applies one Tweedie denoising step at t0 (x0 = (x + sigma_t0^2 s) / alpha_t0; memsep's choice), and
measures per member: the memorization fraction (d1/d2 < 1/3) with its binomial standard error, the
true log-density of the samples, the model's ODE log-likelihood of held-out test points beside the true
and the empirical log p_{t0} of the same points, and the memorization index at a few times.
Everything not given by the paper is a memsep default in ``GMMDefaults``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from theory import alpha, sigma2
from theory.laws.empirical import EmpiricalLaw
from theory.evaluation.likelihood import memorization_index, ode_log_likelihood
from theory.evaluation.memorization import memorization_fraction
from theory.laws.mixture import paper_mixture
from theory.evaluation.samplers import prior_sample, probability_flow, reverse_sde
from theory.networks.score_net import DEFAULT_FREQUENCIES, ScoreNet
from theory.training.dsm import TrainConfig, load_ema, train


@dataclasses.dataclass(frozen=True)
class GMMDefaults:
    """memsep's defaults for the mixture experiments (the paper publishes none of these)."""

    separation: float = 2.0          # Delta_min / sqrt(d) of the mixture means
    trace: float | None = None       # tr Sigma_k (None: d/4, i.e. per-coordinate std 1/2)
    depth: int = 2                   # residual blocks
    sampler: str = "ode"             # "ode" (probability flow, Heun) or "sde"
    sample_steps: int = 60
    n_generated: int = 500
    n_test: int = 200
    loglik_steps: int = 30
    index_times: tuple = (1e-3, 1e-2, 1e-1)
    index_samples: int = 500


def run_group(*, dim: int, n_components: int, width: int, members: Sequence[dict], train_cfg: TrainConfig,
              defaults: GMMDefaults = GMMDefaults(), mixture_seed: int = 0, device="cpu",
              keep_samples: bool = False, checkpoint=None) -> list[dict]:
    """Train one ensemble (one row of ``members`` per net: keys seed, n, and optionally weight_decay and
    copies, the number of exact duplicates among the n, see ``training_set``) and measure every member.
    Returns one dict per member (with 'samples' and 'train' tensors if keep_samples). ``checkpoint``: a
    path where training keeps a resumable checkpoint (``theory.training.train``), or None."""
    trace = defaults.trace if defaults.trace is not None else dim / 4
    truth = paper_mixture(n_components, dim, separation=defaults.separation, trace=trace, seed=mixture_seed,
                          device=device)
    n_max = max(int(m["n"]) for m in members)
    sets = [training_set(truth, n_max, int(m["seed"]), int(m["n"]), int(m.get("copies", 0)))
            for m in members]
    data = torch.stack(sets)
    var = float(data[0].var(0).mean())
    net = ScoreNet(dim, width, defaults.depth, seeds=[int(m["seed"]) for m in members],
                   frequencies=DEFAULT_FREQUENCIES, data_variance=var).to(device)
    result = train(net, data.float(), train_cfg, n_per_member=[int(m["n"]) for m in members],
                   weight_decay=[float(m.get("weight_decay", train_cfg.weight_decay)) for m in members],
                   checkpoint=checkpoint)
    load_ema(net, result.ema)
    net.eval()
    fn = net.flat_score()
    E, G, t0 = len(members), defaults.n_generated, train_cfg.t0
    gen = torch.Generator(device=device).manual_seed(7)
    x_T = prior_sample((E * G, dim), generator=gen, device=device)
    if defaults.sampler == "ode":
        x = probability_flow(fn, x_T, T=train_cfg.T, t0=t0, steps=defaults.sample_steps)
    elif defaults.sampler == "sde":
        x = reverse_sde(fn, x_T, T=train_cfg.T, t0=t0, steps=defaults.sample_steps, generator=gen)
    else:
        raise ValueError(f"sampler must be 'ode' or 'sde', got {defaults.sampler!r}")
    with torch.no_grad():
        x = (x + float(sigma2(t0)) * fn(x, torch.tensor(t0))) / float(alpha(t0))
    test = truth.sample(defaults.n_test, 0.0, torch.Generator(device=device).manual_seed(99))
    loglik = ode_log_likelihood(fn, test.repeat(E, 1), t0=t0, T=train_cfg.T, steps=defaults.loglik_steps)
    true_ll = float(truth.log_prob(test, t0).mean())
    rows = []
    for e, m in enumerate(members):
        train_e = sets[e][: int(m["n"])]
        samples = x[e * G:(e + 1) * G]
        mem = memorization_fraction(samples, train_e)
        emp = EmpiricalLaw(train_e)
        ll = loglik[e * defaults.n_test:(e + 1) * defaults.n_test]
        row = {"d": dim, "K": n_components, "n": int(m["n"]), "width": width, "depth": defaults.depth,
               "params": net.parameters_per_member, "weight_decay": float(m.get("weight_decay", 0.0)),
               "seed": int(m["seed"]), "copies": int(m.get("copies", 0)),
               "mem_fraction": mem.mean, "mem_fraction_se": mem.stderr,
               "sample_logp_true": float(truth.log_prob(samples, 0.0).mean()),
               "sample_logp_true_se": float(truth.log_prob(samples, 0.0).std() / G ** 0.5),
               "test_loglik": float(ll.mean()), "test_loglik_se": float(ll.std() / len(ll) ** 0.5),
               "test_loglik_true": true_ll, "test_loglik_empirical": float(emp.log_prob(test, t0).mean()),
               "final_loss": float(result.losses[-100:, e].mean()),
               "sampler": defaults.sampler, "sample_steps": defaults.sample_steps, "t0": t0, "T": train_cfg.T,
               "train_steps": train_cfg.steps, "threshold": 1 / 3}
        member_fn = _member_fn(fn, E, e, dim)
        for t in defaults.index_times:
            mi = memorization_index(member_fn, emp, truth, t, defaults.index_samples,
                                    torch.Generator(device=device).manual_seed(3))
            row[f"mem_index_t{t:g}"] = mi["index"]
        if keep_samples:
            row["samples"], row["train"] = samples, train_e
        rows.append(row)
    return rows


def training_set(truth, n_max: int, seed: int, n: int, copies: int = 0) -> torch.Tensor:
    """n_max points whose first n are the member's training set: the first n - copies draws of the seed's
    stream followed by ``copies`` exact copies of them (chosen uniformly with repetition; 0: n fresh draws,
    so sets of one seed are nested). Rows past n are fresh draws, unused in training."""
    if not 0 <= copies < n <= n_max:
        raise ValueError(f"need 0 <= copies < n <= n_max, got copies={copies}, n={n}, n_max={n_max}")
    pts = truth.sample(n_max, 0.0, torch.Generator(device=truth.device).manual_seed(10_000 + seed))
    if copies:
        g = torch.Generator().manual_seed(30_000 + seed)
        idx = torch.randint(n - copies, (copies,), generator=g).to(pts.device)
        pts = torch.cat([pts[: n - copies], pts[idx], pts[n:]])
    return pts


def _member_fn(fn, E: int, e: int, dim: int):
    """Member e's score on (B, d) inputs, through the flat ensemble function (others see zeros)."""
    def member(x, t):
        B = x.shape[0]
        full = torch.zeros(E * B, dim, dtype=x.dtype, device=x.device)
        full[e * B:(e + 1) * B] = x
        tt = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(B).repeat(E)
        return fn(full, tt)[e * B:(e + 1) * B]
    return member
