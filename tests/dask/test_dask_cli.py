"""``fastdensity fit gmm --batch-size N``: the fit streamed through Dask from a .npy file."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.array")

import fastdensity as fd  # noqa: E402
from fastdensity.cli import main  # noqa: E402
from fastdensity.cli._streaming import rows_as_dask  # noqa: E402


def _data(tmp_path, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2)) + np.where(rng.random(n) < 0.4, 4.0, 0.0)[:, None]
    np.save(tmp_path / "x.npy", X)
    return X


def test_npy_batches_are_the_file_rows(tmp_path):
    X = _data(tmp_path, n=1003)
    lazy = rows_as_dask(tmp_path / "x.npy", 250)
    assert lazy.chunks == ((250, 250, 250, 250, 3), (2,))
    np.testing.assert_array_equal(lazy.compute(), X)
    np.save(tmp_path / "v.npy", X[:, 0])
    assert rows_as_dask(tmp_path / "v.npy", 500).shape == (1003, 1)


def test_streamed_fit_equals_the_in_memory_fit(tmp_path, capsys):
    X = _data(tmp_path)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    np.save(tmp_path / "w.npy", w)
    args = ["fit", "gmm", str(tmp_path / "x.npy"), "-n", "2", "--weights", str(tmp_path / "w.npy"),
            "--max-iter", "200", "--seed", "0"]
    assert main(args + ["-o", str(tmp_path / "mem.npz")]) == 0
    assert main(args + ["-o", str(tmp_path / "stream.npz"), "--batch-size", "700"]) == 0
    assert "in batches of 700" in capsys.readouterr().out
    mem, stream = fd.load(tmp_path / "mem.npz"), fd.load(tmp_path / "stream.npz")
    order = lambda g: np.argsort(g.means_[:, 0])  # noqa: E731
    # the initialisations differ (k-means on all rows vs on a sample of them): the same optimum
    # of two well-separated components, to EM's tolerance (1e-3 in the mean log-likelihood)
    np.testing.assert_allclose(stream.means_[order(stream)], mem.means_[order(mem)], atol=1e-2)
    np.testing.assert_allclose(stream.score(X), mem.score(X), atol=2e-3)


def test_streaming_refuses_what_it_cannot_do(tmp_path, capsys):
    _data(tmp_path)
    assert main(["fit", "gmm", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.npz"), "--workers", "1",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert "not both" in capsys.readouterr().err
    # a kde fit has no streaming options (a usage error: status 2)
    assert main(["fit", "kde", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.npz"), "--batch-size", "5"]) == 2
    assert "unrecognized arguments: --batch-size 5" in capsys.readouterr().err
