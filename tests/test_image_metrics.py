"""FID against closed forms, precision/recall conventions, feature extraction with a stand-in network,
and the training-set sanity checks (memorization 1, FID ~ 0 against itself)."""

import numpy as np
import pytest
import torch

from verify import _io as cifar
from theory.evaluation.image_metrics import (extract_features, fid, frechet_distance, inside_manifold,
                                             manifold_radii, precision_recall)
from theory.evaluation.memorization import memorization_fraction


def _tiny_net(x):
    """A stand-in feature network: 2x2 average pooling of each channel (12 features)."""
    return torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)


def test_frechet_distance_closed_form_diagonal():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_rotated_commuting_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    c1, c2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(np.zeros(4), c1, np.zeros(4), c2) == pytest.approx(
        np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_of_a_shift_is_the_shift():
    f = torch.randn(200, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(fid(f, f)) < 1e-8
    assert fid(f, f + 0.5) == pytest.approx(6 * 0.25, rel=1e-6)


@pytest.mark.parametrize("n_a, n_b, dim", [(40, 25, 6), (7, 12, 30), (50, 9, 20)])
def test_fid_by_factors_equals_sqrtm_of_the_covariances(n_a, n_b, dim):
    # N > F, N < F (singular covariances, as 32 samples of 2048 Inception features) and mixed
    g = torch.Generator().manual_seed(n_a)
    fa = torch.randn(n_a, dim, generator=g, dtype=torch.float64) @ torch.randn(dim, dim, generator=g, dtype=torch.float64)
    fb = 0.7 * torch.randn(n_b, dim, generator=g, dtype=torch.float64) + 0.3
    stats = [np.mean(f.numpy(), 0) for f in (fa, fb)], [np.cov(f.numpy(), rowvar=False) for f in (fa, fb)]
    (mu_a, mu_b), (c_a, c_b) = stats
    # reference: eigenvalues of C_a C_b (similar to the PSD C_a^1/2 C_b C_a^1/2), clipped at 0 for round-off
    w, v = np.linalg.eigh(c_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ c_b @ root_a), 0, None)).sum()
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(c_a) + np.trace(c_b) - 2 * trace_sqrt
    assert fid(fa, fb) == pytest.approx(expected, rel=1e-7, abs=1e-8)
    assert fid(fa, fb) == pytest.approx(fid(fb, fa), rel=1e-10)
    if n_a > dim and n_b > dim:                     # nonsingular: sqrtm of the product agrees too
        assert fid(fa, fb) == pytest.approx(frechet_distance(mu_a, c_a, mu_b, c_b), rel=1e-7)


def test_precision_recall_are_not_swapped():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 4, generator=g, dtype=torch.float64)
    cluster = real[:5].mean(0) * 0 + 0.05 * torch.randn(60, 4, generator=g, dtype=torch.float64)
    pr = precision_recall(real, cluster, k=3)
    assert pr.precision.mean > 0.9                 # every generated point lies on the real manifold
    assert pr.recall.mean < 0.2                    # the generated set covers a small part of it
    wide = 4.0 * torch.randn(400, 4, generator=g, dtype=torch.float64)
    pr2 = precision_recall(real, wide, k=3)        # too spread out: low precision, high recall
    assert pr2.precision.mean < 0.5 and pr2.recall.mean > 0.9


def test_inside_manifold_is_exact_against_brute_force():
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(50, 3, generator=g, dtype=torch.float64)
    points = 1.5 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    radii = manifold_radii(centres, 3)
    brute = ((points[:, None] - centres[None]).norm(dim=-1) <= radii[None]).any(1)
    assert torch.equal(inside_manifold(points, centres, radii, chunk=17), brute)
    # the radius is the distance to the 3rd nearest other point
    d = (centres[:, None] - centres[None]).norm(dim=-1)
    d.fill_diagonal_(float("inf"))
    torch.testing.assert_close(radii, d.sort(1).values[:, 2])


def test_extract_features_resizes_scales_and_is_batch_invariant():
    u8 = torch.randint(0, 256, (5, 32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    f1 = extract_features(u8, _tiny_net, size=8, batch_size=2)
    f2 = extract_features(u8, _tiny_net, size=8, batch_size=5)
    assert f1.shape == (5, 12) and f1.dtype == torch.float64
    torch.testing.assert_close(f1, f2)
    flat = torch.full((1, 32, 32, 3), 255, dtype=torch.uint8)
    assert torch.allclose(extract_features(flat, _tiny_net, size=299), torch.full((1, 12), 127 / 128,
                                                                                   dtype=torch.float64))


def test_training_set_against_itself_memorization_one_fid_zero():
    u8 = torch.randint(0, 256, (64, 32, 32, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    flat = u8.reshape(64, -1).double()
    assert memorization_fraction(flat, flat).mean == 1.0
    feats = extract_features(u8, _tiny_net, size=None)
    assert abs(fid(feats, feats)) < 1e-9
    pr = precision_recall(feats, feats)
    assert pr.precision.mean == 1.0 and pr.recall.mean == 1.0


INCEPTION = cifar.data_dir() / cifar.INCEPTION


@pytest.mark.skipif(not INCEPTION.is_file(), reason=f"the FID Inception network is not at {INCEPTION} (set MEMSEP_DATA to the folder that has it)")
def test_real_inception_pool3_shape():
    net = cifar.load_inception(INCEPTION)
    u8 = torch.randint(0, 256, (2, 32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    f = extract_features(u8, net)
    assert f.shape == (2, 2048) and bool(torch.isfinite(f).all()) and float(f.min()) >= 0   # pool3 after ReLU


def test_stratified_resample_keeps_each_stratum_and_its_size():
    from theory.evaluation.image_metrics import stratified_resample

    strata = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    for s in range(20):
        idx = stratified_resample(strata, torch.Generator().manual_seed(s))
        assert torch.equal(strata[idx], strata)
    assert len(set(stratified_resample(torch.zeros(50, dtype=torch.long), torch.Generator().manual_seed(0)).tolist())) < 50


def test_quality_bootstrap_intervals_cover_on_gaussian_features():
    """Gaussian 'features' with a known answer: the estimate -+ 1.96 bootstrap sd covers E[FID_N] (the mean of
    the FID of N samples, by Monte Carlo), E[precision_N] and E[recall_N] about 95% of the time; the paired
    difference of two sets with one covariance covers the exact |mu_A|^2 - |mu_O|^2 (the small-sample biases
    cancel in expectation); the naive percentile interval of FID does not cover (repeated rows raise FID)."""
    from theory.evaluation.image_metrics import quality_bootstrap

    F, n_ref, n, strata = 8, 64, 32, torch.arange(32) % 4
    scale = torch.linspace(0.5, 1.5, F, dtype=torch.float64)
    mu_a, mu_o = torch.zeros(F, dtype=torch.float64), torch.zeros(F, dtype=torch.float64)
    mu_a[0], mu_o[1] = 1.0, 0.5
    g = torch.Generator().manual_seed(0)

    def draw():
        ref = torch.randn(n_ref, F, generator=g, dtype=torch.float64)
        z, z2 = (torch.randn(n, F, generator=g, dtype=torch.float64) for _ in range(2))
        return ref, mu_o + scale * z, mu_a + scale * (0.6 * z + 0.8 * z2)     # O and A paired row by row

    def values(ref, x):
        pr = precision_recall(ref, x)
        return np.array([fid(ref, x), pr.precision.mean, pr.recall.mean])

    truth = np.mean([values(*draw()[:2]) for _ in range(200)], axis=0)
    exact_diff = float(mu_a @ mu_a - mu_o @ mu_o)
    reps, covered, percentile, diff_covered = 40, np.zeros(3), 0, 0
    for _ in range(reps):
        ref, o, a = draw()
        d = quality_bootstrap(ref, {"O": o, "A": a}, resamples=20, generator=g, strata=strata)
        est = values(ref, o)
        sd = np.array([t.std().item() for t in (d["O"].fid, d["O"].precision, d["O"].recall)])
        covered += np.abs(est - truth) <= 1.96 * sd
        lo, hi = np.quantile(d["O"].fid.numpy(), [0.025, 0.975])
        percentile += lo <= truth[0] <= hi
        dd = (d["A"].fid - d["O"].fid).std().item()
        diff_covered += abs(fid(ref, a) - fid(ref, o) - exact_diff) <= 1.96 * dd
    assert (covered / reps >= 0.85).all(), covered / reps
    assert diff_covered / reps >= 0.85
    assert percentile / reps < 0.75                      # the pitfall the module docstring warns of


def test_quality_bootstrap_pairs_the_sets_and_checks_shapes():
    from theory.evaluation.image_metrics import quality_bootstrap

    g = torch.Generator().manual_seed(1)
    ref, x = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randn(30, 5, generator=g, dtype=torch.float64)
    d = quality_bootstrap(ref, {"x": x, "same": x.clone()}, resamples=6, generator=g)
    assert torch.equal(d["x"].fid, d["same"].fid) and d["x"].fid.shape == (6,)     # identical sets, identical draws
    assert ((d["x"].precision >= 0) & (d["x"].precision <= 1)).all()
    with pytest.raises(ValueError, match="share one shape"):
        quality_bootstrap(ref, {"x": x, "y": x[:20]}, resamples=4, generator=g)
