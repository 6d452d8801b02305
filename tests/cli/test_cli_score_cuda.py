"""``fastdensity score --backend cuda``'s double buffering (``fastdensity.cli._score_cuda``) on the CPU.

A stand-in ``cupy`` (NumPy arrays, pinned memory as bytearrays, streams and events that record
what is queued where) runs the pipeline; the model scores the stand-in's device arrays on the CPU.
This checks the order of the operations (the copy of batch i+1 queued before the scores of batch
i are waited for, a slot refilled only after its previous batch's scores came back, the kernels
on the compute stream after the copy's event), the last partial batch and that no batch is lost or
scored twice. It says nothing about real overlap or speed: unverified until run on a GPU.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import fastdensity as fd
from fastdensity.cli import main
from fastdensity.cli._score_cuda import gpu_dtype, score_on_gpu
from fastdensity.mixture import GaussianMixture


class _Device(np.ndarray):
    """A 'device' array: a NumPy array whose ``set`` records the host-to-device copy."""

    def __array_finalize__(self, obj):
        self.fake = getattr(obj, "fake", None)

    def set(self, host, stream=None):
        fake = self.fake
        assert stream is fake.streams[0], "host-to-device copies go on the copy stream"
        assert any(np.shares_memory(host, p) for p in fake.pinned), "copies come from pinned memory"
        slot = next(i for i, buf in enumerate(fake.device) if np.shares_memory(self, buf))
        fake.log.append(("h2d", slot, int(host[0, 0]), len(host)))
        np.asarray(self)[...] = host


def _fake_cupy():
    fake = types.SimpleNamespace(log=[], pinned=[], device=[], streams=[], current=None, events=0)

    def alloc_pinned_memory(nbytes):
        memory = bytearray(nbytes)
        fake.pinned.append(np.frombuffer(memory, dtype=np.uint8))
        return memory

    def empty(shape, dtype):
        arr = np.zeros(shape, dtype).view(_Device)
        arr.fake = fake
        fake.device.append(arr)
        return arr

    class Stream:
        def __init__(self, non_blocking=False):
            self.name = ("copy", "compute")[len(fake.streams)]
            fake.streams.append(self)

        def wait_event(self, event):
            fake.log.append(("wait", self.name, event.id))

        def __enter__(self):
            fake.current = self
            return self

        def __exit__(self, *exc):
            fake.current = None

    class Event:
        def __init__(self):
            fake.events += 1
            self.id = fake.events

        def record(self, stream):
            fake.log.append(("record", stream.name, self.id))

    def asnumpy(a, stream=None):
        assert stream is fake.streams[1]
        fake.log.append(("d2h", int(fake.scored[-1])))
        return np.array(a)

    fake.scored = []
    fake.cuda = types.SimpleNamespace(alloc_pinned_memory=alloc_pinned_memory, Stream=Stream, Event=Event)
    fake.empty, fake.asnumpy = empty, asnumpy
    return fake


class _Model:
    """Scores row r as r·0.5 (the first column holds the row index), noting what it was given."""

    def __init__(self, fake):
        self.fake = fake

    def score_samples(self, X):
        fake = self.fake
        assert isinstance(X, _Device) and fake.current is fake.streams[1], "kernels on the compute stream"
        slot = next(i for i, buf in enumerate(fake.device) if np.shares_memory(X, buf))
        fake.log.append(("score", slot, int(X[0, 0]), len(X)))
        fake.scored.append(int(X[0, 0]))
        return np.asarray(X)[:, 0] * 0.5


class _Writer:
    def __init__(self):
        self.parts = []

    def write(self, values):
        self.parts.append(np.array(values))


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, k):
        self.n += k


@pytest.mark.parametrize("n, batch", [(10, 4), (12, 4), (3, 4), (4, 4), (1, 1), (9, 1)])
def test_double_buffer_order_last_batch_and_no_lost_batch(n, batch):
    fake = _fake_cupy()
    X = np.column_stack([np.arange(n, dtype=np.float64), np.ones(n)])
    batches = [X[s:s + batch] for s in range(0, n, batch)]
    writer, bar = _Writer(), _Bar()
    assert score_on_gpu(_Model(fake), iter(batches), writer, bar, batch, 2, np.float64, cp=fake) == n
    # every row scored once, in order, the last batch partial
    np.testing.assert_array_equal(np.concatenate(writer.parts), X[:, 0] * 0.5)
    assert [len(p) for p in writer.parts] == [len(b) for b in batches] and bar.n == n
    assert len(fake.pinned) == 2 and len(fake.device) == 2  # two slots, allocated once
    log = fake.log
    h2d = [e for e in log if e[0] == "h2d"]
    scores = [e for e in log if e[0] == "score"]
    assert [e[2:] for e in h2d] == [e[2:] for e in scores] == [(s, len(b)) for s, b in zip(range(0, n, batch), batches)]
    assert [e[1] for e in h2d] == [i % 2 for i in range(len(batches))]  # the slots alternate
    for i in range(len(batches)):
        first = i * batch
        at = lambda entry: log.index(entry)  # noqa: E731
        # the kernels wait for this batch's copy event, recorded on the copy stream
        copied = log[at(h2d[i]) + 1]
        assert copied[:2] == ("record", "copy")
        assert at(("wait", "compute", copied[2])) < at(scores[i])
        if i + 1 < len(batches):  # the next copy is queued while batch i's kernels run
            assert at(scores[i]) < at(h2d[i + 1]) < at(("d2h", first))
        if i >= 2:  # a slot is refilled only after the scores of its previous batch came back
            assert at(("d2h", (i - 2) * batch)) < at(h2d[i])


def test_float32_files_stay_float32():
    assert gpu_dtype(np.float32) == np.float32
    assert gpu_dtype(np.float64) == gpu_dtype(np.int64) == gpu_dtype(np.float16) == np.float64


def test_the_command_runs_the_pipeline_with_the_real_model(tmp_path, monkeypatch, capsys):
    """The command line with the stand-in as ``cupy``: the GMM's scores of the stand-in's device
    arrays (NumPy underneath, so the CPU engine) equal the CPU command's."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 2))
    fd.save(GaussianMixture(n_components=2, random_state=0).fit(X), tmp_path / "m.npz")
    Q = rng.standard_normal((333, 2))
    np.savetxt(tmp_path / "q.csv", Q, delimiter=",", fmt="%.17g")
    fake = _fake_cupy()
    real = GaussianMixture.score_samples

    def scores(self, rows):
        assert isinstance(rows, _Device) and fake.current is fake.streams[1]
        assert self.backend == "cuda"  # the command set the model's backend
        fake.scored.append(0)
        # the estimator's own GPU dispatch is not part of this test: score the rows on the host
        try:
            return real(self.set_params(backend="cpu"), np.asarray(rows))
        finally:
            self.set_params(backend="cuda")

    monkeypatch.setattr(GaussianMixture, "score_samples", scores)
    from fastdensity._backend import _cuda

    monkeypatch.setattr(_cuda, "require_cupy", lambda feature="", alternative="": fake)
    assert main(["score", str(tmp_path / "m.npz"), str(tmp_path / "q.csv"), "-o", str(tmp_path / "s.npy"),
                 "--backend", "cuda", "--batch-size", "100"]) == 0
    assert "scored 333 rows on the GPU" in capsys.readouterr().out
    assert [e[3] for e in fake.log if e[0] == "h2d"] == [100, 100, 100, 33]
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), real(fd.load(tmp_path / "m.npz"), Q),
                               rtol=8 * np.finfo(np.float64).eps, atol=0)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="the host emulation needs g++")
def test_the_command_with_the_mixture_kernels_in_the_host_emulation(tmp_path, monkeypatch, capsys):
    """The command's pipeline with the GaussianMixture's real GPU path: kernels/mixture.cu runs in
    the host emulation (tests/cuda_host_emulation.py); streams, events and pinned memory are
    stand-ins that run in order (no overlap: that needs a GPU)."""
    import sys

    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    import cuda_host_emulation as emulation

    from fastdensity._backend._cuda import CudaUnavailableError
    from fastdensity.mixture import _mixture_cuda as gpu

    kernels = emulation.fake_cupy(monkeypatch, gpu.SOURCE, gpu.NAME_EXPRESSIONS, device_arrays=True)
    cp = sys.modules["cupy"]

    class Stream:
        def __init__(self, non_blocking=False):
            pass

        def wait_event(self, event):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    class Event:
        def record(self, stream):
            pass

    cp.cuda.alloc_pinned_memory, cp.cuda.Stream, cp.cuda.Event = bytearray, Stream, Event
    monkeypatch.setattr(cp, "asnumpy", lambda a, stream=None: np.array(a).view(np.ndarray), raising=False)

    def set_from_host(self, host, stream=None):
        np.asarray(self)[...] = host

    monkeypatch.setattr(emulation.DeviceArray, "set", set_from_host, raising=False)
    loader = sys.modules["fastdensity._backend._cuda"]
    monkeypatch.setattr(loader, "CudaUnavailableError", CudaUnavailableError, raising=False)

    rng = np.random.default_rng(4)
    fd.save(GaussianMixture(n_components=3, random_state=0).fit(rng.standard_normal((400, 3))), tmp_path / "m.npz")
    Q = rng.standard_normal((250, 3)) * 1.5
    np.save(tmp_path / "q.npy", Q)
    assert main(["score", str(tmp_path / "m.npz"), str(tmp_path / "q.npy"), "-o", str(tmp_path / "s.npy"),
                 "--backend", "cuda", "--batch-size", "64"]) == 0
    assert "scored 250 rows on the GPU" in capsys.readouterr().out
    launches = sum(len(k.launches) for k in kernels.values())
    assert launches >= 4  # the emulated kernels scored the 4 batches (64, 64, 64, 58 rows)
    expected = fd.load(tmp_path / "m.npz").set_params(backend="cpu").score_samples(Q)
    # float64 on both sides; the kernel sums the d squared distances and the k components in
    # another order than the CPU engine: a few ulps of the terms, |log p| here is O(10)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), expected, rtol=0, atol=64 * 10 * np.finfo(np.float64).eps)
