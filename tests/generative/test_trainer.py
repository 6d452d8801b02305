"""The shared Trainer: determinism, resume, NaN guard, early stopping, checkpoints, progress bar."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastdensity.generative import Trainer, TrainingHistory, load_checkpoint  # noqa: E402
from fastdensity.generative._trainer import CHECKPOINT_NAME  # noqa: E402


class NoisyRegression:
    """A small task that uses the global torch RNG inside its steps (like a VAE's noise)."""

    def __init__(self, d=5, seed=0, lr=1e-2, nan_at=None, as_float=False):
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.nan_at = nan_at
        self.as_float = as_float
        self.steps = 0

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"opt": self.opt}

    def _loss(self, batch):
        x, y = batch[:, :-1], batch[:, -1:]
        x = x + 0.1 * torch.randn_like(x)
        return ((self.net(x) - y) ** 2).mean()

    def train_step(self, batch):
        self.steps += 1
        self.opt.zero_grad()
        loss = self._loss(batch)
        loss.backward()
        self.opt.step()
        value = loss.detach()
        if self.nan_at is not None and self.steps == self.nan_at:
            value = value * float("nan")
        return {"loss": float(value) if self.as_float else value, "scale": 2.0 * value}

    def eval_step(self, batch):
        return {"loss": self._loss(batch)}

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


def make_data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X @ rng.normal(size=d))[:, None]
    return torch.as_tensor(np.hstack([X, y]), dtype=torch.float32)


def weights(task):
    return {k: v.clone() for k, v in task.net.state_dict().items()}


def test_loss_decreases_and_history_shape():
    data = make_data()
    task = NoisyRegression()
    hist = Trainer(max_epochs=8, batch_size=32, random_state=0).fit(task, data[:240], data[240:])
    assert isinstance(hist, TrainingHistory)
    assert set(hist) == {"train_loss", "train_scale", "val_loss"}
    assert all(len(v) == 8 for v in hist.values())
    assert hist["train_loss"][-1] < 0.7 * hist["train_loss"][0]
    np.testing.assert_allclose(hist["train_scale"], 2 * np.asarray(hist["train_loss"]), rtol=1e-6)
    assert len(hist.epoch_time) == 8


def test_epoch_average_is_batch_size_weighted():
    # eval_step returning the batch mean: its weighted average over batches is the full-data mean
    class MeanTask(NoisyRegression):
        def eval_step(self, batch):
            return {"mean": batch[:, 0].double().mean()}

    data = make_data(n=100)
    hist = Trainer(max_epochs=1, batch_size=30, random_state=0).fit(MeanTask(), data, data[:77])
    np.testing.assert_allclose(hist["val_mean"][0], data[:77, 0].double().mean().item(), rtol=1e-12)


def test_deterministic_with_random_state_and_restores_global_rng():
    data = make_data()
    runs = []
    for _ in range(2):
        task = NoisyRegression()  # seeds the global RNG for its initialisation
        torch.manual_seed(123)
        before = torch.get_rng_state()
        hist = Trainer(max_epochs=3, batch_size=50, random_state=7).fit(task, data)
        assert torch.equal(torch.get_rng_state(), before)  # fit forks the global RNG
        runs.append((hist["train_loss"], weights(task)))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        assert torch.equal(runs[0][1][k], runs[1][1][k])
    other = Trainer(max_epochs=3, batch_size=50, random_state=8).fit(NoisyRegression(), data)
    assert other["train_loss"] != runs[0][0]


def test_resume_continues_identically(tmp_path):
    data = make_data()
    full_task = NoisyRegression()
    full = Trainer(max_epochs=6, batch_size=32, random_state=3).fit(full_task, data[:240], data[240:])

    ckpt = tmp_path / "ckpt"
    part_task = NoisyRegression()
    Trainer(max_epochs=3, batch_size=32, random_state=3, checkpoint_dir=ckpt).fit(part_task, data[:240], data[240:])
    # a fresh model and optimizer, different init: everything must come from the checkpoint
    resumed_task = NoisyRegression(seed=99)
    resumed = Trainer(max_epochs=6, batch_size=32, random_state=3, checkpoint_dir=ckpt, resume=True).fit(
        resumed_task, data[:240], data[240:]
    )
    assert dict(resumed) == dict(full)  # bit-for-bit, every epoch
    assert resumed_task.steps == full_task.steps
    for k, v in weights(full_task).items():
        assert torch.equal(v, resumed_task.net.state_dict()[k])
    assert resumed.best_epoch == full.best_epoch


def test_resume_without_checkpoint_starts_afresh(tmp_path):
    data = make_data()
    a = Trainer(max_epochs=2, batch_size=64, random_state=1).fit(NoisyRegression(), data)
    b = Trainer(max_epochs=2, batch_size=64, random_state=1, checkpoint_dir=tmp_path, resume=True).fit(
        NoisyRegression(), data
    )
    assert dict(a) == dict(b)
    assert (tmp_path / CHECKPOINT_NAME).exists()


def test_checkpoint_loads_with_weights_only_and_is_atomic(tmp_path):
    data = make_data()
    task = NoisyRegression()
    Trainer(max_epochs=2, batch_size=64, random_state=0, checkpoint_dir=tmp_path, patience=5).fit(
        task, data[:200], data[200:]
    )
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 2
    assert set(state["modules"]) == {"net"} and set(state["optimizers"]) == {"opt"}
    for k, v in task.net.state_dict().items():
        assert torch.equal(state["modules"]["net"][k], v)
    assert state["history"]["train_loss"] == load_checkpoint(tmp_path)["history"]["train_loss"]
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]  # no temporary files left behind


def test_resume_with_other_architecture_fails_clearly(tmp_path):
    data = make_data()
    Trainer(max_epochs=1, random_state=0, checkpoint_dir=tmp_path).fit(NoisyRegression(), data)
    with pytest.raises(ValueError, match="does not fit this model"):
        Trainer(max_epochs=2, random_state=0, checkpoint_dir=tmp_path, resume=True).fit(NoisyRegression(d=3), data)


@pytest.mark.parametrize("as_float", [False, True])
def test_nan_guard_names_quantity_epoch_and_step(as_float):
    data = make_data(n=100)
    task = NoisyRegression(nan_at=13, as_float=as_float)  # 10 steps per epoch -> epoch 2, step 3
    with pytest.raises(FloatingPointError, match=r"'loss' \(nan\) at epoch 2, step 3"):
        Trainer(max_epochs=5, batch_size=10, random_state=0).fit(task, data)


def test_nan_guard_in_eval_step():
    class BadEval(NoisyRegression):
        def eval_step(self, batch):
            return {"loss": torch.tensor(float("inf"))}

    data = make_data(n=100)
    with pytest.raises(FloatingPointError, match=r"eval_step returned a non-finite 'loss' \(inf\) at epoch 1"):
        Trainer(max_epochs=2, batch_size=10, random_state=0).fit(BadEval(), data, data[:20])


def test_nan_guard_keeps_last_good_checkpoint(tmp_path):
    data = make_data(n=100)
    with pytest.raises(FloatingPointError, match="epoch 3, step 1"):
        Trainer(max_epochs=5, batch_size=50, random_state=0, checkpoint_dir=tmp_path).fit(
            NoisyRegression(nan_at=5), data
        )
    assert load_checkpoint(tmp_path)["epoch"] == 2


def test_early_stopping_restores_best_weights():
    class Scripted(NoisyRegression):
        """Validation loss scripted per epoch (best at epoch 3); snapshots the weights each epoch."""

        script = [5.0, 4.0, 1.0, 2.0, 3.0, 0.5, 0.1, 0.1]

        def __init__(self):
            super().__init__()
            self.snapshots = []

        def eval_step(self, batch):  # one validation batch per epoch
            self.snapshots.append(weights(self))
            return {"loss": self.script[len(self.snapshots) - 1]}

    task = Scripted()
    data = make_data(n=64)
    hist = Trainer(max_epochs=8, batch_size=64, random_state=0, patience=2).fit(task, data, data[:10])
    assert hist.stopped_early and hist.best_epoch == 3 and hist.best_value == 1.0
    assert hist["val_loss"] == [5.0, 4.0, 1.0, 2.0, 3.0]
    for k, v in task.snapshots[2].items():
        assert torch.equal(task.net.state_dict()[k], v)
    assert not torch.equal(task.snapshots[4]["0.weight"], task.snapshots[2]["0.weight"])


def test_monitor_missing_with_patience_raises():
    data = make_data(n=50)
    with pytest.raises(ValueError, match="monitor='val_loss' is not among"):
        Trainer(max_epochs=2, patience=1, random_state=0).fit(NoisyRegression(), data)


def test_progress_bar_silent_when_not_a_tty(capsys):
    data = make_data(n=50)
    Trainer(max_epochs=2, random_state=0).fit(NoisyRegression(), data)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    Trainer(max_epochs=2, random_state=0, progress=True).fit(NoisyRegression(), data)
    assert "training" in capsys.readouterr().err  # the bar itself works when asked for


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_epochs": 0}, "max_epochs must be a positive int"),
        ({"batch_size": 2.5}, "batch_size must be a positive int"),
        ({"patience": 0}, "patience must be a positive integer or None; got 0"),
        ({"random_state": -1}, "random_state must be None"),
        ({"progress": "yes"}, "progress must be None"),
        ({"resume": True}, "resume=True needs checkpoint_dir"),
    ],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer(**kwargs).fit(NoisyRegression(), make_data(n=20))


def test_input_errors():
    with pytest.raises(TypeError, match="X_train must be a torch.Tensor"):
        Trainer().fit(NoisyRegression(), np.zeros((4, 6)))
    with pytest.raises(ValueError, match="X_val must be non-empty with the sample shape"):
        Trainer().fit(NoisyRegression(), make_data(n=20), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="task must implement TrainingTask"):
        Trainer().fit(object(), make_data(n=20))


@pytest.mark.gpu
def test_cuda_device_from_data_and_deferred_guard():
    data = make_data(n=200).cuda()
    task = NoisyRegression()
    hist = Trainer(max_epochs=2, batch_size=20, random_state=0).fit(task, data)
    assert next(task.net.parameters()).is_cuda and len(hist["train_loss"]) == 2
    with pytest.raises(FloatingPointError, match="epoch 1, step 4"):
        Trainer(max_epochs=2, batch_size=20, random_state=0).fit(NoisyRegression(nan_at=4), data)


def test_deferred_accumulation_matches_immediate_and_names_first_bad_step():
    """The CUDA path (values reduced every few steps) gives the CPU path's means and errors."""
    from fastdensity.generative._trainer import _Accumulator

    rng = np.random.default_rng(0)
    values = [(int(n), {"loss": torch.tensor(v, dtype=torch.float32), "f": float(v) * 2})
              for n, v in zip(rng.integers(1, 9, size=11), rng.normal(size=11))]
    means = []
    for sync_every in (1, 4):
        acc = _Accumulator("train_step", 1, sync_every)
        for step, (n, vals) in enumerate(values, start=1):
            acc.add(step, n, vals)
        means.append(acc.means())
    assert means[0].keys() == means[1].keys() == {"loss", "f"}
    for k in means[0]:
        assert means[0][k] == pytest.approx(means[1][k], rel=1e-12)
    acc = _Accumulator("train_step", 3, 4)
    bad = [{"loss": torch.tensor(1.0)}, {"loss": torch.tensor(2.0)}, {"loss": torch.tensor(float("-inf"))},
           {"loss": torch.tensor(float("nan"))}]
    with pytest.raises(FloatingPointError, match=r"'loss' \(-inf\) at epoch 3, step 3"):
        for step, vals in enumerate(bad, start=1):
            acc.add(step, 5, vals)
