"""The plug-in memorization check (python -m verify memorization) against brute-force numbers: nearest
neighbours by scipy's cdist, Wilson and Newcombe intervals from their formulas, improved precision/recall
from full distance matrices, FID with scipy's sqrtm; on small arrays in every input format and on a folder
of PNG images; chunking changes nothing; mistakes are one line with status 2."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.stats
import torch

import theory
from verify import plugin_memorization as pm
from verify.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------- brute force
def brute_memorized(samples, train, threshold=1 / 3) -> int:
    atoms = np.unique(np.asarray(train, np.float64).reshape(len(train), -1), axis=0)
    d = np.sort(scipy.spatial.distance.cdist(np.asarray(samples, np.float64).reshape(len(samples), -1), atoms), 1)
    return int((d[:, 0] < threshold * d[:, 1]).sum())


def wilson(k, n, level=0.95):
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def newcombe(k1, n1, k2, n2):
    (p1, l1, u1), (p2, l2, u2) = wilson(k1, n1), wilson(k2, n2)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def brute_precision_recall(real, gen, k=3):
    def radii(x):
        return np.sort(scipy.spatial.distance.cdist(x, x), 1)[:, k]          # column 0 is the point itself

    prec = (scipy.spatial.distance.cdist(gen, real) <= radii(real)[None]).any(1).mean()
    rec = (scipy.spatial.distance.cdist(real, gen) <= radii(gen)[None]).any(1).mean()
    return prec, rec


def brute_fid(a, b):
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():          # C1 C2 is singular with fewer samples than features
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(root))


# --------------------------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vectors")
    law = theory.paper_mixture(4, 3, separation=2.0, seed=0)
    g = torch.Generator().manual_seed(1)
    train = law.sample(150, 0.0, g).numpy()
    train[7] = train[3]                                           # a duplicate: counted once
    held = law.sample(90, 0.0, g).numpy()
    rng = np.random.default_rng(0)
    gen = np.concatenate([train[:50] + 1e-3 * rng.standard_normal((50, 3)), law.sample(110, 0.0, g).numpy()])
    np.save(folder / "train.npy", train)
    np.save(folder / "held.npy", held)
    np.savez(folder / "gen.npz", samples=gen, other=np.zeros(3))
    torch.save({"x": torch.from_numpy(gen)}, folder / "gen.pt")
    return folder, train, held, gen


def test_vectors_against_brute_force(vectors):
    folder, train, held, gen = vectors
    r = pm.check(folder / "train.npy", f"{folder / 'gen.npz'}:samples", folder / "held.npy")
    k, kh = brute_memorized(gen, train), brute_memorized(held, train)
    assert 40 <= k <= 60 and r["memorized"] == k and r["null_heldout_count"] == kh
    assert r["n_train_distinct"] == 149 and r["n_generated"] == 160 and r["n_heldout"] == 90
    np.testing.assert_allclose([r["memorization"], r["memorization_lo"], r["memorization_hi"]], wilson(k, 160), rtol=1e-12)
    np.testing.assert_allclose([r["null_heldout"], r["null_heldout_lo"], r["null_heldout_hi"]], wilson(kh, 90), rtol=1e-12)
    np.testing.assert_allclose([r["excess_heldout"], r["excess_heldout_lo"], r["excess_heldout_hi"]],
                               newcombe(k, 160, kh, 90), rtol=1e-12)
    prec, rec = brute_precision_recall(train, gen)
    assert r["precision"] == pytest.approx(prec, abs=1e-12) and r["recall"] == pytest.approx(rec, abs=1e-12)
    np.testing.assert_allclose([r["precision_lo"], r["precision_hi"]], wilson(round(prec * 160), 160)[1:], rtol=1e-12)
    assert "fid" not in r                                        # FID is for images


def test_formats_and_chunks_give_the_same_result(vectors):
    folder, *_ = vectors
    a = pm.check(folder / "train.npy", folder / "gen.pt", folder / "held.npy", chunk=7)
    b = pm.check(folder / "train.npy", f"{folder / 'gen.npz'}:samples", folder / "held.npy", chunk=10_000)
    keys = [k for k in a if k != "generated"]
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_true_law_null_rate_and_sample_quality(vectors):
    folder, train, _, gen = vectors
    r = pm.check(folder / "train.npy", folder / "gen.pt", true_law="paper:K=4,d=3,separation=2,seed=0", seed=5)
    draws = theory.paper_mixture(4, 3, separation=2.0, seed=0).sample(160, 0.0, torch.Generator().manual_seed(5))
    kq = brute_memorized(draws.numpy(), train)
    assert r["null_true_law_count"] == kq and r["n_true_law"] == 160
    np.testing.assert_allclose([r["excess_true_law"], r["excess_true_law_lo"], r["excess_true_law_hi"]],
                               newcombe(r["memorized"], 160, kq, 160), rtol=1e-12)
    assert abs(r["logp_gap"]) < 4 * r["logp_gap_se"] + 0.5        # near-copies of true draws fit the law
    # the same law from a file
    law = theory.paper_mixture(4, 3, separation=2.0, seed=0)
    np.savez(folder / "law.npz", weights=law.weights.numpy(), means=law.means.numpy(),
             covariances=law.covariances.numpy())
    again = pm.check(folder / "train.npy", folder / "gen.pt", true_law=str(folder / "law.npz"), seed=5)
    assert again["null_true_law_count"] == kq and again["logp_gap"] == pytest.approx(r["logp_gap"], rel=1e-12)


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    blocks = np.repeat(np.repeat(rng.integers(0, 256, (34, 4, 4, 3), dtype=np.uint8), 2, 1), 2, 2)   # 8x8
    train, held = blocks[:24], blocks[24:]
    gen = np.concatenate([train[:5], rng.integers(0, 256, (9, 8, 8, 3), dtype=np.uint8)])
    (folder / "gen").mkdir()
    for i, img in enumerate(gen):
        Image.fromarray(img).save(folder / "gen" / f"{i:03d}.png")
    np.save(folder / "train.npy", train)
    np.save(folder / "held_nchw.npy", np.ascontiguousarray(held.transpose(0, 3, 1, 2)))   # channels first
    return folder, train, held, gen


def _feats(x):
    return (x.reshape(len(x), -1).astype(np.float64) - 128.0) / 128.0


def test_png_folder_against_brute_force(pngs, tmp_path, capsys):
    folder, train, held, gen = pngs
    assert main(["memorization", "--train", str(folder / "train.npy"), "--generated", str(folder / "gen"),
                 "--heldout", str(folder / "held_nchw.npy"), "--features", "pixels", "--out", str(tmp_path),
                 "--chunk", "4"]) == 0
    printed = capsys.readouterr().out
    r = json.loads((tmp_path / "memorization.json").read_text())
    assert r["kind"] == "images" and r["shape"] == "8x8x3" and r["n_generated"] == 14
    k, kh = brute_memorized(gen, train), brute_memorized(held, train)
    assert k == r["memorized"] == 5 and r["null_heldout_count"] == kh
    np.testing.assert_allclose([r["memorization"], r["memorization_lo"], r["memorization_hi"]], wilson(5, 14), rtol=1e-12)
    prec, rec = brute_precision_recall(_feats(train), _feats(gen))
    assert r["precision"] == pytest.approx(prec, abs=1e-12) and r["recall"] == pytest.approx(rec, abs=1e-12)
    assert r["fid"] == pytest.approx(brute_fid(_feats(train), _feats(gen)), rel=1e-6)
    assert r["fid_heldout"] == pytest.approx(brute_fid(_feats(train), _feats(held)), rel=1e-6)
    assert "memorization fraction     0.357 [" in printed and "FID vs the training set" in printed
    header = (tmp_path / "memorization.csv").read_text().splitlines()[0].split(",")
    assert {"memorization", "memorization_lo", "null_heldout", "excess_heldout", "precision", "recall", "fid"} <= set(header)


def test_inception_path_uses_the_given_network(pngs, tmp_path):
    """--inception FILE: the features of that TorchScript network (a small stand-in here) at 299 x 299."""
    from theory.evaluation.image_metrics import extract_features, fid

    folder, train, _, gen = pngs
    with warnings.catch_warnings():          # torch.jit is deprecated; the shared Inception file is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        net = torch.jit.script(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten()))
    net.save(str(tmp_path / "net.pt"))
    r = pm.check(folder / "train.npy", folder / "gen", features="inception", inception=tmp_path / "net.pt", chunk=5)
    ft = extract_features(torch.from_numpy(train), net)
    fg = extract_features(torch.from_numpy(gen), net)
    assert r["fid"] == pytest.approx(fid(ft, fg), rel=1e-9)
    assert r["fid"] == pytest.approx(brute_fid(ft.numpy(), fg.numpy()), rel=1e-5, abs=1e-9)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("verify: error: "), err
    return err[0]


def test_mistakes_are_one_line(vectors, pngs, tmp_path, monkeypatch, capsys):
    folder, *_ = vectors
    img, *_ = pngs
    base = ["memorization", "--train", str(folder / "train.npy"), "--out", str(tmp_path)]
    assert main(base + ["--generated", str(folder / "nope.npy")]) == 2
    assert f"--generated {folder / 'nope.npy'}: no such file or folder" in _one_line(capsys)
    assert main(base + ["--generated", str(folder / "gen.npz")]) == 2
    assert "holds several arrays (other, samples): choose one as" in _one_line(capsys)
    assert main(base + ["--generated", str(img / "gen"), "--features", "none"]) == 2
    assert "they must match" in _one_line(capsys)
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan, 1.0]] * 3))
    assert main(base + ["--generated", str(tmp_path / "nan.npy")]) == 2
    assert "NaN or infinite" in _one_line(capsys)
    assert main(base + ["--generated", str(folder / "gen.pt"), "--true-law", "paper:K=4,d=5"]) == 2
    assert "lives in d = 5, the samples in d = 3" in _one_line(capsys)
    monkeypatch.setenv("MEMSEP_DATA", str(tmp_path / "empty"))
    assert main(["memorization", "--train", str(img / "train.npy"), "--generated", str(img / "gen")]) == 2
    line = _one_line(capsys)
    assert "fid_inception_2015-12-05_pool3.pt" in line and "MEMSEP_DATA" in line and "--features none" in line
    assert main(["memorization", "--generated", "x.npy"]) == 2
    assert "the following arguments are required: --train" in _one_line(capsys)
