"""The ``fastdensity`` command line: fit / score / sample round trips, errors and the demo."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastdensity
from fastdensity import KernelDensity
from fastdensity.cli import main
from fastdensity.io import load, save

REPO_ROOT = Path(fastdensity.__file__).resolve().parent.parent


def _write_csv(path, X, header=True):
    with open(path, "w") as fh:
        if header:
            fh.write(",".join(f'"c{j}"' for j in range(X.shape[1])) + "\n")
        np.savetxt(fh, X, delimiter=",", fmt="%.17g")


def _read(path):
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path)
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def _error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastdensity: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2)) * [1.0, 3.0]
    Q = rng.standard_normal((257, 2)) * 2.0
    np.save(tmp_path / "train.npy", X)
    np.save(tmp_path / "queries.npy", Q)
    _write_csv(tmp_path / "train.csv", X)
    _write_csv(tmp_path / "queries.csv", Q, header=False)
    return X, Q


@pytest.mark.parametrize("fmt", ["npy", "csv"])
def test_fit_score_sample_round_trip(tmp_path, capsys, data, fmt):
    X, Q = data
    model = tmp_path / "model.npz"
    assert main(["fit", "kde", str(tmp_path / f"train.{fmt}"), "-o", str(model), "--bandwidth", "scott"]) == 0
    kde = load(model)
    np.testing.assert_array_equal(kde.training_data_, X)
    np.testing.assert_allclose(kde.bandwidth_matrix_, KernelDensity(bandwidth="scott").fit(X).bandwidth_matrix_)

    out = tmp_path / f"scores.{fmt}"
    assert main(["score", str(model), str(tmp_path / f"queries.{fmt}"), "-o", str(out)]) == 0
    np.testing.assert_array_equal(_read(out).ravel(), kde.score_samples(Q))

    samples = tmp_path / f"samples.{fmt}"
    assert main(["sample", str(model), "-n", "50", "-o", str(samples), "--seed", "7"]) == 0
    drawn = _read(samples)
    assert drawn.shape == (50, 2)
    np.testing.assert_array_equal(drawn, kde.sample(50, random_state=7))
    assert "wrote" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["train.npy", "queries.npy", "train.csv", "queries.csv", "model.npz", f"scores.{fmt}", f"samples.{fmt}"]
    )


def test_batch_size_does_not_change_results(tmp_path, data):
    X, Q = data
    model = tmp_path / "m.npz"
    save(KernelDensity(bandwidth=0.7, kernel="epanechnikov").fit(X), model)
    outs = []
    for batch in ("100000", "100", "16"):
        out = tmp_path / f"s{batch}.npy"
        assert main(["score", str(model), str(tmp_path / "queries.npy"), "-o", str(out), "--batch-size", batch]) == 0
        outs.append(np.load(out))
    assert np.isneginf(outs[0]).any() and np.isfinite(outs[0]).any()  # outside and inside the support
    np.testing.assert_array_equal(outs[0], load(model).score_samples(np.load(tmp_path / "queries.npy")))
    for other in outs[1:]:
        # The engine is batch-independent up to rounding (DESIGN.md, "Numerics").
        np.testing.assert_allclose(other, outs[0], rtol=1e-13, atol=0)


def test_fit_options_and_npz_and_weights(tmp_path, data):
    X, _ = data
    np.savez(tmp_path / "train.npz", X=X)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    np.save(tmp_path / "w.npy", w)
    model = tmp_path / "m.npz"
    args = ["fit", "kde", str(tmp_path / "train.npz"), "-o", str(model), "--bandwidth", "0.4,0.9",
            "--kernel", "biweight", "--adaptive", "--weights", str(tmp_path / "w.npy")]
    assert main(args) == 0
    kde = load(model)
    expected = KernelDensity(bandwidth=np.array([0.4, 0.9]), kernel="biweight", adaptive=True).fit(X, sample_weight=w)
    np.testing.assert_array_equal(kde.bandwidth_, [0.4, 0.9])
    np.testing.assert_array_equal(kde.sample_weight_, w)
    np.testing.assert_array_equal(kde.score_samples(X[:20]), expected.score_samples(X[:20]))


def test_fit_one_dimensional_data(tmp_path):
    x = np.random.default_rng(2).standard_normal(100)
    np.save(tmp_path / "x.npy", x)
    assert main(["fit", "kde", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.npz"), "-b", "0.5"]) == 0
    kde = load(tmp_path / "m.npz")
    assert kde.n_features_in_ == 1 and kde.bandwidth_ == 0.5


def test_progress_bar_only_when_asked_or_on_a_tty(tmp_path, capsys, data):
    X, _ = data
    save(KernelDensity().fit(X), tmp_path / "m.npz")
    base = ["score", str(tmp_path / "m.npz"), str(tmp_path / "queries.npy"), "--batch-size", "50"]
    assert main(base + ["-o", str(tmp_path / "a.npy")]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal under capsys
    assert main(base + ["-o", str(tmp_path / "b.npy"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "100.0%" in err and "257/257 rows" in err and err.endswith("\n")
    assert main(base + ["-o", str(tmp_path / "c.npy"), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_failed_score_leaves_no_output(tmp_path, capsys, data, monkeypatch):
    X, _ = data
    save(KernelDensity().fit(X), tmp_path / "m.npz")
    (tmp_path / "out.npy").write_bytes(b"old contents")
    calls = []

    def flaky(self, Q):
        calls.append(len(Q))
        if len(calls) == 3:
            raise ValueError("simulated failure in batch 3")
        return np.zeros(len(Q))

    monkeypatch.setattr(KernelDensity, "score_samples", flaky)
    for out in ("out.npy", "new.csv"):
        code = main(["score", str(tmp_path / "m.npz"), str(tmp_path / "queries.npy"), "-o", str(tmp_path / out),
                     "--batch-size", "100"])
        assert code == 1
        assert "simulated failure in batch 3" in _error_line(capsys)
        calls.clear()
    assert (tmp_path / "out.npy").read_bytes() == b"old contents"
    assert not (tmp_path / "new.csv").exists()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "argv, pattern",
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["fit", "kde", "{d}/train.npy"], "the following arguments are required: -o/--output"),
        (["fit", "kde", "{d}/train.npy", "-o", "{d}/m.npz", "--kernel", "boxcar"], "invalid choice: 'boxcar'"),
        (["fit", "kde", "{d}/train.npy", "-o", "{d}/m.npz", "--bandwidth", "wide"], "invalid bandwidth 'wide'"),
        (["fit", "kde", "{d}/train.npy", "-o", "{d}/m.npz", "--bandwidth", "-1"], "invalid bandwidth '-1'"),
        (["fit", "kde", "{d}/train.txt", "-o", "{d}/m.npz"], r"unsupported data file .*train.txt"),
        (["fit", "vae", "{d}/train.npy", "-o", "{d}/m.npz"], "invalid choice: 'vae'"),
        (["score", "{d}/m.npz", "{d}/queries.npy", "-o", "{d}/out.txt"], "unsupported output file"),
        (["score", "{d}/m.npz", "{d}/queries.npy", "-o", "{d}/o.npy", "--batch-size", "0"], "expected a positive integer"),
        (["sample", "{d}/m.npz", "-n", "ten", "-o", "{d}/s.npy"], "expected a positive integer; got 'ten'"),
        (["sample", "{d}/m.npz", "-n", "3", "-o", "{d}/s.npy", "--seed", "-1"], "non-negative integer seed"),
        (["score", "{d}/m.npz", "{d}/queries.npy", "-o", "{d}/o.npy", "--progress", "--no-progress"],
         "not allowed with argument"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, argv, pattern):
    import re

    argv = [a.format(d=tmp_path) for a in argv]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert re.search(pattern, line), line
    assert not list(tmp_path.iterdir())


def test_runtime_errors_exit_1_with_one_line(tmp_path, capsys, data):
    X, _ = data
    d = tmp_path
    save(KernelDensity().fit(X), d / "m.npz")
    np.save(d / "three.npy", np.zeros((5, 3)))
    (d / "corrupt.npz").write_bytes(b"not a model at all")
    (d / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    np.save(d / "strings.npy", np.array(["a", "b"]))
    np.savez(d / "two.npz", a=np.zeros(3), b=np.zeros(3))
    np.save(d / "w.npy", np.ones(7))
    cases = [
        (["fit", "kde", str(d / "missing.npy"), "-o", str(d / "x.npz")], "cannot access '.*missing.npy': No such file"),
        (["score", str(d / "missing.npz"), str(d / "queries.npy"), "-o", str(d / "o.npy")], "No such file"),
        (["score", str(d / "corrupt.npz"), str(d / "queries.npy"), "-o", str(d / "o.npy")],
         r"cannot load model file '.*corrupt.npz': not a fastdensity model file"),
        (["score", str(d / "m.npz"), str(d / "three.npy"), "-o", str(d / "o.npy")],
         r"DATA '.*three.npy' has 3 features \(columns\) but the model was fitted on 2"),
        (["fit", "kde", str(d / "bad.csv"), "-o", str(d / "x.npz")], r"cannot read DATA '.*bad.csv'"),
        (["fit", "kde", str(d / "strings.npy"), "-o", str(d / "x.npz")], "is not a numeric array"),
        (["fit", "kde", str(d / "two.npz"), "-o", str(d / "x.npz")], "must hold exactly one array; it holds 2"),
        (["fit", "kde", str(d / "train.npy"), "-o", str(d / "x.npz"), "--weights", str(d / "w.npy")],
         "has 7 values but DATA has 300 rows"),
        (["fit", "kde", str(d / "train.npy"), "-o", str(d / "x.npz"), "-b", "isj"], 'bandwidth="isj" is for 1-D data'),
        (["fit", "kde", str(d / "train.npy"), "-o", str(d / "no-such-dir" / "x.npz")],
         r"cannot access '.*no-such-dir/x.npz': No such file or directory"),
        (["sample", str(d / "three.npy"), "-n", "3", "-o", str(d / "s.npy")], "not an .npz archive"),
    ]
    import re

    for argv, pattern in cases:
        assert main(argv) == 1, argv
        line = _error_line(capsys)
        assert re.search(pattern, line), line
    assert not (d / "x.npz").exists() and not (d / "o.npy").exists() and not (d / "s.npy").exists()
    assert not [name for name in os.listdir(d) if name.endswith(".tmp")]


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "fit" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert fastdensity.__version__ in capsys.readouterr().out


# -------------------------------------------------------------------------------------- demo


def test_demo_in_process_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    assert main(["demo", "--quick", "--output-dir", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "skipped the plots" in out
    for rule in ("scott", "silverman", "isj", "sj", "plugin", "cv", "0.25"):
        assert f" {rule} " in out
    assert "refused" not in out  # ISJ on the rounded eruption times: a bandwidth, not a refusal
    assert "pair evaluations/s" in out
    assert not (tmp_path / "plots").exists()


def test_demo_without_torch_skips_the_generative_section(tmp_path, capsys, monkeypatch):
    from fastdensity.cli._demo_generative import run_generative_demo

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    lines = []
    assert run_generative_demo(lambda text="": lines.append(text), tmp_path, quick=True, plots=True) == {}
    assert "PyTorch is not installed" in lines[-1]
    assert not any(tmp_path.iterdir())


def _subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MPLBACKEND"] = "Agg"
    return env


def test_demo_subprocess_writes_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "demo out"
    proc = subprocess.run(
        [sys.executable, "-m", "fastdensity", "demo", "--quick", "--output-dir", str(out_dir)],
        cwd=tmp_path, env=_subprocess_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mean log-lik" in proc.stdout and "Old Faithful" in proc.stdout and "digits" in proc.stdout
    pngs = sorted(p.name for p in out_dir.iterdir())
    expected = ["old_faithful_1d_rules.png", "old_faithful_2d_contour.png", "old_faithful_gmm_clusters.png"]
    if importlib.util.find_spec("torch") is not None:
        expected += ["digits_samples.png", "digits_training_curves.png"]
        assert "VAE (bernoulli" in proc.stdout and "GAN samples" in proc.stdout and "IWAE" in proc.stdout
    assert pngs == sorted(expected)
    assert "model comparison" in proc.stdout and "GMM, BIC-chosen" in proc.stdout
    for name in pngs:
        assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_does_not_import_matplotlib():
    code = ("import sys, fastdensity, fastdensity.cli, fastdensity.io, fastdensity.datasets; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    proc = subprocess.run([sys.executable, "-c", code], env=_subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_python_m_error_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fastdensity", "score", str(tmp_path / "absent.npz"), str(tmp_path / "q.npy"),
         "-o", str(tmp_path / "o.npy")],
        env=_subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("fastdensity: error: cannot access")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("model_args", [["gmm", "--n-components", "2"], ["gmm", "--covariance-type", "diag"],
                                        ["normal"], ["normal", "--covariance-type", "spherical"],
                                        ["knn", "--n-neighbors", "5"], ["knn", "--algorithm", "kd_tree"]])
def test_fit_score_sample_other_models(model_args, tmp_path):
    import fastdensity

    rng = np.random.default_rng(21)
    data = np.vstack([rng.normal(size=(120, 2)), rng.normal(size=(120, 2)) + 4.0])
    data_path, model_path = tmp_path / "data.npy", tmp_path / "model.npz"
    np.save(data_path, data)
    assert main(["fit", *model_args[:1], str(data_path), "-o", str(model_path), *model_args[1:]]) == 0
    assert main(["score", str(model_path), str(data_path), "-o", str(tmp_path / "s.npy"), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), fastdensity.load(model_path).score_samples(data),
                               rtol=1e-13)
    if model_args[0] == "knn":
        assert main(["sample", str(model_path), "-n", "7", "-o", str(tmp_path / "x.npy")]) == 1
        return
    assert main(["sample", str(model_path), "-n", "7", "-o", str(tmp_path / "x.npy"), "--seed", "3"]) == 0
    assert np.load(tmp_path / "x.npy").shape == (7, 2)


def test_fit_gmm_rejects_zero_components(tmp_path, capsys):
    data_path = tmp_path / "data.npy"
    np.save(data_path, np.random.default_rng(0).normal(size=(20, 2)))
    assert main(["fit", "gmm", str(data_path), "-o", str(tmp_path / "m.npz"), "--n-components", "0"]) == 2
    err = capsys.readouterr().err
    assert "expected a positive integer" in err and len(err.strip().splitlines()) == 1


def test_fit_knn_rejects_weights(tmp_path, capsys):
    data_path, weights_path = tmp_path / "data.npy", tmp_path / "w.npy"
    np.save(data_path, np.random.default_rng(0).normal(size=(20, 2)))
    np.save(weights_path, np.ones(20))
    assert main(["fit", "knn", str(data_path), "-o", str(tmp_path / "m.npz"), "--weights", str(weights_path)]) == 1
    assert "--weights is not supported by KNNDensity" in capsys.readouterr().err
