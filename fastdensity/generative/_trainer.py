"""The one training loop shared by the VAE and the GAN.

A model describes *what* to train as a :class:`TrainingTask` (its modules, its optimizers, one
training step and one evaluation step); :class:`Trainer` does everything else: shuffling with a
seeded generator, per-epoch averages, evaluation on validation data, early stopping with the best
weights restored, a NaN/inf guard, atomic checkpoints, ``resume=True`` and a progress bar.

Determinism. ``fit`` runs inside :func:`torch.random.fork_rng`: the global torch RNG (which the
task's own draws use, e.g. the VAE's reparameterisation noise) is seeded from ``random_state``
for the run and the caller's RNG state is restored afterwards. Shuffling uses a separate
``torch.Generator``. Both RNG states go into every checkpoint, so a resumed run on the CPU gives
bit-for-bit the losses and weights of an uninterrupted one.

Overhead. A step's values may be Python floats or detached 0-dim tensors. On the CPU each is
read at once into float64 running sums (``.item()`` is cheap there; measured < 2 % of a step
against a hand-written loop, ``bench/generative_vae.py``). On CUDA the tensors stay on the device
and are copied to the host together every 32 steps, so that the host does not wait for the device
on every step; the NaN/inf guard checks each value then and still names the first bad step.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .._backend._validation import Integer, check_parameter
from ._checkpoint import _CHECKPOINT_FORMAT, CHECKPOINT_NAME, _atomic_torch_save, load_checkpoint
from ._seeds import seed_pair

__all__ = ["Trainer", "TrainingHistory", "TrainingTask", "load_checkpoint"]

logger = logging.getLogger(__name__)

_CUDA_SYNC_EVERY = 32


@runtime_checkable
class TrainingTask(Protocol):
    """What the :class:`Trainer` trains. The VAE and the GAN each build one.

    A task may also define ``state_dict()`` / ``load_state_dict(state)`` for state of its own
    beyond modules and optimizers (e.g. a step counter); the Trainer then saves and restores it
    with the checkpoints. That state must hold only tensors and plain Python containers/scalars.
    """

    def modules(self) -> dict[str, torch.nn.Module]:
        """The modules, by name; saved in checkpoints under these names."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers, by name; saved in checkpoints under these names."""
        ...

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        """One optimisation step on ``batch`` (does its own zero_grad/backward/step).

        Returns detached scalars (floats or 0-dim tensors) by name; lower is better for a
        quantity used as the Trainer's ``monitor``.
        """
        ...

    def eval_step(self, batch: torch.Tensor) -> dict[str, float]:
        """Evaluation on ``batch``, called under ``torch.no_grad()``; may return ``{}``."""
        ...


class TrainingHistory(dict):
    """Per-epoch averages, a dict of lists: ``history["train_loss"][e]`` is epoch ``e + 1``.

    Keys are ``train_<name>`` for the values returned by ``train_step`` and ``val_<name>`` for
    those of ``eval_step``. Averages are weighted by batch size.

    Attributes
    ----------
    best_epoch : int or None
        The (1-based) epoch with the lowest monitored value, when one was monitored.
    best_value : float or None
        That value.
    stopped_early : bool
        Whether training stopped before ``max_epochs`` because the monitored value stopped
        improving for ``patience`` epochs.
    epoch_time : list of float
        Wall-clock seconds of each epoch run in this process (training and evaluation).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.best_epoch = None
        self.best_value = None
        self.stopped_early = False
        self.epoch_time = []

    @property
    def n_epochs(self) -> int:
        """The number of completed epochs."""
        return max((len(v) for v in self.values()), default=0)

    def __repr__(self):
        keys = ", ".join(sorted(self))
        return f"TrainingHistory(epochs={self.n_epochs}, keys=[{keys}], best_epoch={self.best_epoch})"


_COUNTS = {"max_epochs": Integer(1), "batch_size": Integer(1), "patience": Integer(1, none=True),
           "checkpoint_every": Integer(1)}


def _progress_enabled(progress) -> bool:
    if progress is None:
        stream = sys.stderr
        return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be None (auto: only on a terminal), True or False; got {progress!r}")
    return progress


class _Accumulator:
    """Batch-size-weighted sums of step values, reduced in float64 on the host every few steps."""

    def __init__(self, phase, epoch, sync_every):
        self.phase = phase
        self.epoch = epoch
        self.sync_every = sync_every
        self.pending = []  # (step, n, values)
        self.sums = {}
        self.count = 0

    def add(self, step, n, values):
        if self.sync_every == 1:  # the CPU path: read each scalar now (cheap), no lists
            for key, v in values.items():
                v = v.item() if isinstance(v, torch.Tensor) else float(v)
                if not math.isfinite(v):
                    self._raise(key, v, step)
                self.sums[key] = self.sums.get(key, 0.0) + v * n
            self.count += n
            return
        self.pending.append((step, n, values))
        if len(self.pending) >= self.sync_every:
            self.flush()

    def _raise(self, key, value, step):
        raise FloatingPointError(
            f"{self.phase} returned a non-finite {key!r} ({value}) at epoch {self.epoch}, step {step}; "
            "lower the learning rate, check the data for NaN/inf, or resume from the last checkpoint"
        )

    def flush(self):
        if not self.pending:
            return
        keys = []
        for _, _, values in self.pending:
            for k in values:
                if k not in keys:
                    keys.append(k)
        for key in keys:
            entries = [(step, n, values[key]) for step, n, values in self.pending if key in values]
            host = self._to_host([v for _, _, v in entries])
            bad = ~np.isfinite(host)
            if bad.any():
                i = int(np.argmax(bad))
                self._raise(key, float(host[i]), entries[i][0])
            weights = np.array([n for _, n, _ in entries], dtype=np.float64)
            self.sums[key] = self.sums.get(key, 0.0) + float(np.dot(host, weights))
        self.count += sum(n for _, n, _ in self.pending)
        self.pending = []

    @staticmethod
    def _to_host(values):
        if all(isinstance(v, torch.Tensor) for v in values):
            if len(values) == 1:
                return np.array([values[0].detach().double().item()])
            # one device -> host copy for all steps since the last flush
            return torch.stack([v.detach().reshape(()).double() for v in values]).cpu().numpy()
        return np.array([float(v) for v in values], dtype=np.float64)

    def means(self):
        self.flush()
        return {k: s / self.count for k, s in self.sums.items()} if self.count else {}


class Trainer:
    """Trains a :class:`TrainingTask`: mini-batches, validation, early stopping, checkpoints.

    Parameters
    ----------
    max_epochs : int, default 100
        Number of passes over the training data.
    batch_size : int, default 128
        Mini-batch size; the last batch of an epoch may be smaller. Also the evaluation batch size.
    device : str, torch.device or None, default None
        Where to train. ``None``: the device of ``X_train``. Data and modules are moved there.
    random_state : int, numpy Generator or None, default None
        Seeds the shuffling and the global torch RNG for the run (restored afterwards). With an
        int, training on the CPU is deterministic.
    monitor : str, default "val_loss"
        History key watched for early stopping and for the best weights (lower is better). If the
        key never appears (e.g. no validation data) and ``patience`` is None, nothing is monitored.
    patience : int or None, default None
        Stop after this many epochs without improvement of ``monitor``, then restore the weights
        of the best epoch. ``None``: train all ``max_epochs`` (best weights are still restored
        at the end when ``monitor`` was seen).
    checkpoint_dir : str, os.PathLike or None, default None
        Folder for ``checkpoint.pt`` (created if missing), written atomically.
    checkpoint_every : int, default 1
        Write a checkpoint every this many epochs (and after the last one).
    resume : bool, default False
        Continue from ``checkpoint_dir/checkpoint.pt`` if it exists (otherwise start afresh). The
        modules and optimizers must have the same structure as when it was written.
    progress : bool or None, default None
        A tqdm bar over epochs on stderr. ``None``: only when stderr is a terminal.
    restore_best : bool, default True
        Restore the weights of the best monitored epoch at the end.

    Notes
    -----
    Epochs are numbered from 1 in messages and in ``TrainingHistory.best_epoch``.
    """

    def __init__(self, *, max_epochs=100, batch_size=128, device=None, random_state=None, monitor="val_loss",
                 patience=None, checkpoint_dir=None, checkpoint_every=1, resume=False, progress=None,
                 restore_best=True):
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.monitor = monitor
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.progress = progress
        self.restore_best = restore_best

    # -- validation ---------------------------------------------------------------------------
    def _validate(self, task, X_train, X_val):
        for name, rule in _COUNTS.items():
            check_parameter(name, getattr(self, name), rule)
        if not isinstance(self.monitor, str):
            raise TypeError(f"monitor must be a history key such as 'val_loss'; got {self.monitor!r}")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir (the folder holding checkpoint.pt)")
        for name in ("modules", "optimizers", "train_step", "eval_step"):
            if not callable(getattr(task, name, None)):
                raise TypeError(f"task must implement TrainingTask; {type(task).__name__} has no {name}()")
        if not isinstance(X_train, torch.Tensor):
            raise TypeError(f"X_train must be a torch.Tensor; got {type(X_train).__name__}")
        if X_train.ndim < 1 or X_train.shape[0] == 0:
            raise ValueError(f"X_train must hold at least one sample; got shape {tuple(X_train.shape)}")
        if X_val is not None:
            if not isinstance(X_val, torch.Tensor):
                raise TypeError(f"X_val must be a torch.Tensor or None; got {type(X_val).__name__}")
            if X_val.shape[0] == 0 or X_val.shape[1:] != X_train.shape[1:]:
                raise ValueError(
                    f"X_val must be non-empty with the sample shape of X_train {tuple(X_train.shape[1:])}; "
                    f"got {tuple(X_val.shape)}"
                )
        device = torch.device(self.device) if self.device is not None else X_train.device
        return device

    # -- state --------------------------------------------------------------------------------
    @staticmethod
    def _module_states(task):
        return {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in task.modules().items()}

    def _checkpoint(self, task, epoch, shuffle_gen, device, history, early):
        state = {
            "format": _CHECKPOINT_FORMAT,
            "epoch": epoch,
            "modules": {name: m.state_dict() for name, m in task.modules().items()},
            "optimizers": {name: o.state_dict() for name, o in task.optimizers().items()},
            "task": task.state_dict() if callable(getattr(task, "state_dict", None)) else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "shuffle": shuffle_gen.get_state(),
            },
            "history": {k: list(v) for k, v in history.items()},
            "early_stopping": early,
        }
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        _atomic_torch_save(state, os.path.join(self.checkpoint_dir, CHECKPOINT_NAME))

    def _restore(self, task, state, shuffle_gen, device):
        modules, optimizers = task.modules(), task.optimizers()
        if set(state["modules"]) != set(modules) or set(state["optimizers"]) != set(optimizers):
            raise ValueError(
                f"checkpoint holds modules {sorted(state['modules'])} and optimizers {sorted(state['optimizers'])}; "
                f"the task has {sorted(modules)} and {sorted(optimizers)}"
            )
        try:
            for name, m in modules.items():
                m.load_state_dict(state["modules"][name])
            for name, o in optimizers.items():
                o.load_state_dict(state["optimizers"][name])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ValueError(f"the checkpoint does not fit this model (different architecture?): {exc}") from exc
        if state.get("task") is not None and callable(getattr(task, "load_state_dict", None)):
            task.load_state_dict(state["task"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        shuffle_gen.set_state(state["rng"]["shuffle"])

    # -- loop ---------------------------------------------------------------------------------
    def fit(self, task, X_train, X_val=None):
        """Train ``task`` on ``X_train`` (rows are samples), evaluating on ``X_val`` each epoch.

        Parameters
        ----------
        task : TrainingTask
        X_train : torch.Tensor of shape (n, ...)
        X_val : torch.Tensor of shape (m, ...) or None

        Returns
        -------
        TrainingHistory

        Raises
        ------
        FloatingPointError
            When a step returns NaN or inf (the message names the quantity, epoch and step).
        """
        device = self._validate(task, X_train, X_val)
        X_train = X_train.to(device)
        X_val = X_val.to(device) if X_val is not None else None
        for m in task.modules().values():
            m.to(device)
        cuda_devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices, device_type="cuda"):
            return self._fit(task, X_train, X_val, device)

    def _fit(self, task, X_train, X_val, device):
        global_seed, shuffle_seed = seed_pair(self.random_state)
        torch.manual_seed(global_seed)
        shuffle_gen = torch.Generator(device="cpu").manual_seed(shuffle_seed)
        history = TrainingHistory()
        early = {"best_value": None, "best_epoch": None, "wait": 0, "stopped": False, "best_modules": None}
        start_epoch = 0

        path = os.path.join(self.checkpoint_dir, CHECKPOINT_NAME) if self.checkpoint_dir is not None else None
        if self.resume and os.path.exists(path):
            state = load_checkpoint(path, map_location=device)
            self._restore(task, state, shuffle_gen, device)
            history.update({k: list(v) for k, v in state["history"].items()})
            early = state["early_stopping"]
            start_epoch = int(state["epoch"])
            logger.info("resuming from %s after epoch %d", path, start_epoch)

        sync_every = _CUDA_SYNC_EVERY if device.type == "cuda" else 1
        n, bs = X_train.shape[0], self.batch_size
        enabled = _progress_enabled(self.progress)
        bar = None
        if enabled and start_epoch < self.max_epochs and not early["stopped"]:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, initial=start_epoch, desc="training", unit="epoch",
                       file=sys.stderr, dynamic_ncols=True)
        try:
            epoch = start_epoch
            while epoch < self.max_epochs and not early["stopped"]:
                epoch += 1
                t0 = time.perf_counter()
                modules = task.modules()
                for m in modules.values():
                    m.train()
                acc = _Accumulator("train_step", epoch, sync_every)
                perm = torch.randperm(n, generator=shuffle_gen).to(device)
                for step, start in enumerate(range(0, n, bs), start=1):
                    idx = perm[start:start + bs]
                    acc.add(step, idx.shape[0], task.train_step(X_train[idx]))
                record = {f"train_{k}": v for k, v in acc.means().items()}
                if X_val is not None:
                    for m in modules.values():
                        m.eval()
                    vacc = _Accumulator("eval_step", epoch, sync_every)
                    with torch.no_grad():
                        for step, start in enumerate(range(0, X_val.shape[0], bs), start=1):
                            batch = X_val[start:start + bs]
                            vacc.add(step, batch.shape[0], task.eval_step(batch))
                    record.update({f"val_{k}": v for k, v in vacc.means().items()})
                    for m in modules.values():
                        m.train()
                for k, v in record.items():
                    history.setdefault(k, []).append(v)
                self._early_stopping(task, epoch, record, early)
                history.epoch_time.append(time.perf_counter() - t0)
                if path is not None and (epoch % self.checkpoint_every == 0 or epoch == self.max_epochs
                                         or early["stopped"]):
                    self._checkpoint(task, epoch, shuffle_gen, device, history, early)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()}, refresh=False)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

        if early["best_epoch"] is not None and self.restore_best:
            for name, m in task.modules().items():
                m.load_state_dict(early["best_modules"][name])
        history.best_epoch = early["best_epoch"]
        history.best_value = early["best_value"]
        history.stopped_early = bool(early["stopped"])
        return history

    def _early_stopping(self, task, epoch, record, early):
        if self.monitor not in record:
            if self.patience is not None:
                raise ValueError(
                    f"monitor={self.monitor!r} is not among the epoch's values {sorted(record)}; "
                    "pass validation data or pick one of those keys"
                )
            return
        value = record[self.monitor]
        if not math.isfinite(value):
            raise FloatingPointError(f"the monitored {self.monitor!r} is not finite ({value}) at epoch {epoch}")
        if early["best_value"] is None or value < early["best_value"]:
            early.update(best_value=value, best_epoch=epoch, wait=0, best_modules=self._module_states(task))
        else:
            early["wait"] += 1
            if self.patience is not None and early["wait"] >= self.patience:
                early["stopped"] = True
                logger.info("early stopping at epoch %d; best %s = %.6g at epoch %d", epoch, self.monitor,
                            early["best_value"], early["best_epoch"])
