"""``fastdensity score`` streamed from .npy, .csv and Parquet; ``fit gmm`` streamed from .csv and
Parquet; atomic output; the tqdm bar; --workers on a local Dask cluster (slow)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdensity as fd
from fastdensity.cli import main
from fastdensity.mixture import GaussianMixture

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 3)) + np.where(rng.random(2000) < 0.3, 3.0, 0.0)[:, None]
    Q = rng.standard_normal((777, 3)) * 2
    fd.save(GaussianMixture(n_components=2, random_state=0).fit(X), tmp_path / "m.npz")
    np.save(tmp_path / "q.npy", Q)
    np.savetxt(tmp_path / "q.csv", Q, delimiter=",", fmt="%.17g", header="a,b,c", comments="")
    pq.write_table(pa.table({c: Q[:, j] for j, c in enumerate("abc")}), tmp_path / "q.parquet", row_group_size=200)
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", fmt="%.17g")
    pq.write_table(pa.table({c: X[:, j] for j, c in enumerate("abc")}), tmp_path / "x.parquet", row_group_size=500)
    return tmp_path, X, Q


def _read(path):
    return np.load(path) if str(path).endswith(".npy") else np.loadtxt(path, skiprows=1, ndmin=1)


@pytest.mark.parametrize("fmt", ["npy", "csv", "parquet"])
@pytest.mark.parametrize("out", ["npy", "csv"])
def test_streamed_scores_equal_the_in_memory_scores(files, fmt, out, capsys):
    d, _, Q = files
    expected = fd.load(d / "m.npz").score_samples(Q)
    for batch in ("100000", "64"):
        path = d / f"s{batch}.{out}"
        assert main(["score", str(d / "m.npz"), str(d / f"q.{fmt}"), "-o", str(path), "--batch-size", batch]) == 0
        assert "scored 777 rows on this process" in capsys.readouterr().out
        # The same rows in (the files hold float64 exactly); the mixture's log density is per row,
        # so only the blocking of the engine's sums may differ: a few ulps of the result.
        np.testing.assert_allclose(_read(path), expected, rtol=8 * np.finfo(np.float64).eps, atol=0)


@pytest.mark.parametrize("out", ["out.npy", "new.csv"])
@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_failing_batch_leaves_no_output_and_no_temporary_file(files, monkeypatch, capsys, out, error):
    d, _, _ = files
    (d / "out.npy").write_bytes(b"old contents")
    calls = []
    real = GaussianMixture.score_samples

    def flaky(self, X):
        calls.append(len(X))
        if len(calls) == 3:
            raise error("simulated failure in batch 3")
        return real(self, X)

    monkeypatch.setattr(GaussianMixture, "score_samples", flaky)
    code = main(["score", str(d / "m.npz"), str(d / "q.csv"), "-o", str(d / out), "--batch-size", "100"])
    assert code == (1 if error is ValueError else 130)
    assert len(calls) == 3
    assert (d / "out.npy").read_bytes() == b"old contents"
    assert not (d / "new.csv").exists()
    assert not [name for name in os.listdir(d) if name.endswith(".tmp")]


def test_a_bad_csv_line_is_named_and_nothing_written(files, capsys):
    d, _, Q = files
    lines = (d / "q.csv").read_text().split("\n")
    lines[500] = "1,2,three"
    (d / "bad.csv").write_text("\n".join(lines))
    assert main(["score", str(d / "m.npz"), str(d / "bad.csv"), "-o", str(d / "s.npy"), "--batch-size", "128"]) == 1
    assert "line 501, column 3: 'three' is not a number" in capsys.readouterr().err
    assert not (d / "s.npy").exists() and not [n for n in os.listdir(d) if n.endswith(".tmp")]


def test_tqdm_bar_with_rate_and_eta(files, capsys):
    d, _, _ = files
    base = ["score", str(d / "m.npz"), str(d / "q.parquet"), "--batch-size", "100"]
    assert main(base + ["-o", str(d / "a.npy"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "scoring 100.0% |" in err and "777/777 rows [" in err and "rows/s]" in err and err.endswith("\n")
    assert main(base + ["-o", str(d / "b.npy")]) == 0  # stderr is no terminal under capsys
    assert capsys.readouterr().err == ""


def test_refusals(files, capsys):
    d, _, _ = files
    base = ["score", str(d / "m.npz"), str(d / "q.npy"), "-o", str(d / "s.npy")]
    assert main(base + ["--workers", "1", "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(base + ["--workers", "1", "--backend", "cuda"]) == 1
    assert "cannot be combined with --workers" in capsys.readouterr().err
    assert main(base + ["--backend", "gpu"]) == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
    np.save(d / "two.npy", np.ones((5, 2)))
    assert main(["score", str(d / "m.npz"), str(d / "two.npy"), "-o", str(d / "s.npy")]) == 1
    assert "has 2 features (columns) but the model was fitted on 3" in capsys.readouterr().err


def test_backend_cuda_without_a_gpu_is_a_clear_error(files, capsys):
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    d, _, _ = files
    assert main(["score", str(d / "m.npz"), str(d / "q.npy"), "-o", str(d / "s.npy"), "--backend", "cuda"]) == 1
    err = capsys.readouterr().err
    # the command line names its own option, not the Python keyword
    assert "fastdensity score --backend cuda is not available" in err and "use --backend cpu" in err
    assert "backend='cpu'" not in err
    assert not (d / "s.npy").exists()
    # auto falls back to the CPU
    assert main(["score", str(d / "m.npz"), str(d / "q.npy"), "-o", str(d / "s.npy"), "--backend", "auto"]) == 0
    assert "on this process" in capsys.readouterr().out


def _has_gpu():
    from fastdensity._backend._cuda import CudaUnavailableError, require_cupy

    try:
        require_cupy()
    except CudaUnavailableError:
        return False
    return True


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_fit_from_csv_and_parquet(files, fmt, capsys):
    pytest.importorskip("dask.array")
    d, X, _ = files
    args = ["fit", "gmm", "-n", "2", "--seed", "0", "--max-iter", "200"]
    assert main(args + [str(d / "x.npy"), "-o", str(d / "npy.npz"), "--batch-size", "300"]) == 0
    assert main(args + [str(d / f"x.{fmt}"), "-o", str(d / "f.npz"), "--batch-size", "300"]) == 0
    assert "on 2000 rows × 3 features in batches of 300" in capsys.readouterr().out
    a, b = fd.load(d / "npy.npz"), fd.load(d / "f.npz")
    # the same rows in the same batches (exact float64 in every format): the same fit, up to the
    # order in which the threaded scheduler adds the batch totals
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "csv", "parquet"])
def test_scoring_on_local_dask_workers(files, fmt, capsys):
    pytest.importorskip("distributed")
    d, _, Q = files
    expected = fd.load(d / "m.npz").score_samples(Q)
    assert main(["score", str(d / "m.npz"), str(d / f"q.{fmt}"), "-o", str(d / "s.csv"), "--batch-size", "50",
                 "--workers", "2", "--no-progress"]) == 0
    assert "scored 777 rows on 2 Dask workers" in capsys.readouterr().out
    np.testing.assert_allclose(_read(d / "s.csv"), expected, rtol=8 * np.finfo(np.float64).eps, atol=0)


def test_in_memory_fit_from_parquet(files):
    d, X, _ = files
    assert main(["fit", "normal", str(d / "x.parquet"), "-o", str(d / "n.npz")]) == 0
    assert main(["fit", "normal", str(d / "x.npy"), "-o", str(d / "n2.npz")]) == 0
    # the same float64 rows: the same maximum-likelihood fit, bit for bit
    np.testing.assert_array_equal(fd.load(d / "n.npz").score_samples(X[:50]), fd.load(d / "n2.npz").score_samples(X[:50]))
