"""``fastdensity train`` and ``fastdensity evaluate``."""

import csv
import io
import json

import numpy as np
import pytest

from fastdensity.cli import main

torch = pytest.importorskip("torch")


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def digits_file(tmp_path):
    from fastdensity.datasets import load_digits

    path = tmp_path / "digits.npy"
    np.save(path, load_digits(binarize=True, split="validation"))
    return path


def history_rows(directory):
    with open(directory / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_vae_writes_results_and_resume_continues(tmp_path, digits_file):
    out_dir = tmp_path / "vae"
    code, out, err = run(["train", "vae", digits_file, "-o", out_dir, "--epochs", 2, "--n-samples", 7,
                          "--latent-dim", 4, "--no-progress"])
    assert code == 0, err
    assert "trained a VAE for 2 epochs" in out
    samples = np.load(out_dir / "samples.npy")
    assert samples.shape == (7, 8, 8) and np.all((samples >= 0) & (samples <= 1))
    assert len(history_rows(out_dir)) == 2
    assert (out_dir / "checkpoints").is_dir()
    from fastdensity.generative import VAE

    vae = VAE.load(out_dir / "vae.pt")
    assert vae.latent_dim == 4 and vae.sample(3, random_state=0).shape == (3, 8, 8)
    first_two = history_rows(out_dir)

    # --resume with a longer --epochs continues the same run: the first epochs are kept unchanged.
    code, out, err = run(["train", "vae", digits_file, "-o", out_dir, "--epochs", 4, "--n-samples", 7,
                          "--latent-dim", 4, "--no-progress", "--resume"])
    assert code == 0, err
    rows = history_rows(out_dir)
    assert len(rows) == 4 and rows[:2] == first_two
    assert json.loads((out_dir / "config.json").read_text())["params"]["max_epochs"] == 4


def test_resume_refuses_other_settings(tmp_path, digits_file):
    out_dir = tmp_path / "vae"
    assert run(["train", "vae", digits_file, "-o", out_dir, "--epochs", 1, "--latent-dim", 4, "--no-progress"])[0] == 0
    code, _, err = run(["train", "vae", digits_file, "-o", out_dir, "--epochs", 2, "--latent-dim", 5, "--resume"])
    assert code == 1 and "--latent-dim" in err and "differ" in err


def test_resume_without_a_previous_run(tmp_path, digits_file):
    code, _, err = run(["train", "vae", digits_file, "-o", tmp_path / "none", "--resume", "--no-progress"])
    assert code == 1 and "nothing to resume" in err


def test_train_gan_on_points(tmp_path):
    from fastdensity.datasets import make_ring

    data = tmp_path / "ring.npy"
    np.save(data, make_ring(512, random_state=0))
    out_dir = tmp_path / "gan"
    code, out, err = run(["train", "gan", data, "-o", out_dir, "--steps", 20, "--pack", 2, "--batch-size", 64,
                          "--n-samples", 50, "--no-progress"])
    assert code == 0, err
    assert np.load(out_dir / "samples.npy").shape == (50, 2)
    assert {"train_generator_loss", "train_discriminator_loss"} <= set(history_rows(out_dir)[0])


def test_train_gan_with_rejection_sampling(tmp_path):
    from fastdensity.datasets import make_ring

    data = tmp_path / "ring.npy"
    np.save(data, make_ring(512, random_state=0))
    out_dir = tmp_path / "gan"
    code, _, err = run(["train", "gan", data, "-o", out_dir, "--steps", 20, "--batch-size", 64, "--rejection-sampling",
                        "--ratio-steps", 50, "--n-samples", 30, "--no-progress"])
    assert code == 0, err
    assert np.load(out_dir / "samples.npy").shape == (30, 2)
    with open(out_dir / "config.json", encoding="utf-8") as fh:
        params = json.load(fh)["params"]
    assert params["rejection_sampling"] is True and params["ratio_steps"] == 50


def test_train_rejects_bad_options(tmp_path, digits_file):
    code, _, err = run(["train", "vae", digits_file, "-o", tmp_path / "x", "--validation-fraction", "1.5"])
    assert code == 2 and "fraction" in err
    code, _, err = run(["train", "gan", digits_file, "-o", tmp_path / "x", "--steps", 5, "--epochs", 5])
    assert code == 2 and "not allowed with" in err


def test_evaluate_features_equals_the_metric_functions(tmp_path):
    from fastdensity.metrics import fid, kid, prdc

    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((300, 6)), rng.standard_normal((250, 6)) * 1.2 + 0.1
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "fake.npy", fake)
    code, out, err = run(["evaluate", tmp_path / "real.npy", tmp_path / "fake.npy", "--json", tmp_path / "m.json",
                          "--kid-subsets", 20, "--kid-subset-size", 100, "--seed", 4, "--nearest-k", 3])
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["fid"] == pytest.approx(fid(real, fake), rel=1e-12)
    expected_kid = kid(real, fake, subsets=20, subset_size=100, random_state=4)
    assert metrics["kid_mean"] == pytest.approx(expected_kid.mean, rel=1e-12)
    expected = prdc(real, fake, nearest_k=3)
    for name in ("precision", "recall", "density", "coverage"):
        assert metrics[name] == pytest.approx(expected[name], rel=1e-12)
    assert "fid" in out and "coverage" in out


def test_evaluate_digit_images_through_the_shipped_cnn(tmp_path):
    from fastdensity.datasets import load_digits
    from fastdensity.metrics import features, fid

    real, fake = load_digits(split="test")[:200], load_digits(split="validation")
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "fake.npy", fake)
    code, _, err = run(["evaluate", tmp_path / "real.npy", tmp_path / "fake.npy", "--json", tmp_path / "m.json",
                        "--kid-subsets", 5])
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["feature_dim"] == 64 and metrics["kid_subset_size"] == 180
    assert metrics["fid"] == pytest.approx(fid(features(real), features(fake)), rel=1e-6)


def test_evaluate_errors(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.random((20, 8, 8)))
    np.save(tmp_path / "b.npy", rng.random((20, 4)))
    code, _, err = run(["evaluate", tmp_path / "a.npy", tmp_path / "b.npy"])
    assert code == 1 and "same sample shape" in err
    code, _, err = run(["evaluate", tmp_path / "a.npy", tmp_path / "a.npy", "--features", "none"])
    assert code == 1 and "holds images" in err
    code, _, err = run(["evaluate", tmp_path / "a.npy", tmp_path / "a.npy", "--features", tmp_path / "missing.pth"])
    assert code == 1 and "existing weights file" in err
