"""The FID Inception-v3 network in plain PyTorch (no torchvision), with weights from a user's file.

The architecture is torchvision's ``Inception3`` (Szegedy et al., 2016, "Rethinking the Inception
architecture for computer vision") as patched by pytorch-fid (``FIDInceptionA``, ``FIDInceptionC``,
``FIDInceptionE_1``, ``FIDInceptionE_2``) to reproduce the TensorFlow graph of the original FID
code (Heusel et al., 2017): the average pools inside the A, C and first E blocks exclude the zero
padding from their mean (``count_include_pad=False``), the last E block uses a max pool in its pool
branch, and the classifier has 1008 outputs. The attribute names are torchvision's, so the state
dict keys are those of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.

This module imports torch at import time; :mod:`fastdensity.metrics._features` imports it only
when :class:`InceptionV3Features` is asked for. Nothing is ever downloaded.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InceptionV3Features"]

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_INPUT_SIZE = 299


class _Conv(nn.Module):
    """torchvision's ``BasicConv2d``: convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x):
    # TensorFlow's average pool leaves the padded zeros out of the mean (pytorch-fid's patch).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _InceptionA(nn.Module):
    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = _Conv(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = _Conv(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = _Conv(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = _Conv(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, kernel_size=3, padding=1)
        self.branch_pool = _Conv(in_channels, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, bp], 1)


class _InceptionB(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = _Conv(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = _Conv(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _InceptionC(nn.Module):
    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _Conv(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = _Conv(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = _Conv(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _Conv(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = _Conv(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _Conv(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _Conv(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = _Conv(in_channels, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, bd, bp], 1)


class _InceptionD(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = _Conv(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = _Conv(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = _Conv(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = _Conv(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _InceptionE(nn.Module):
    """``pool="avg"``: pytorch-fid's ``FIDInceptionE_1`` (Mixed_7b); ``pool="max"``: its
    ``FIDInceptionE_2`` (Mixed_7c), whose pool branch uses a max pool as the TensorFlow graph does."""

    def __init__(self, in_channels, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = _Conv(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = _Conv(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = _Conv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = _Conv(in_channels, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = _avg_pool_no_pad(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class InceptionV3Features(nn.Module):
    """The FID Inception-v3: 2048-d pool3 features (and 1008 class logits) of images in [0, 1].

    The network of pytorch-fid / the original TensorFlow FID code, written in plain PyTorch (see
    the module notes for the FID-specific differences from torchvision's Inception-v3). Images
    are prepared as pytorch-fid does: grey images (one channel) are repeated to three channels,
    everything is resized to 299×299 bilinearly (``align_corners=False``, no antialiasing) and
    scaled from [0, 1] to [−1, 1].

    Parameters
    ----------
    weights_path : str or os.PathLike or None
        The FID weights: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a state dict with
        torchvision's key names and a 1008-class ``fc``), which you download yourself —
        fastdensity never downloads anything. Loaded with ``torch.load(..., weights_only=True)``;
        the key names and shapes are checked. ``None`` keeps random weights: only for tests of the
        pipeline (random features mean nothing for FID); a ``UserWarning`` says so.

    Notes
    -----
    Use it with :func:`fastdensity.metrics.features` (``extractor=InceptionV3Features(path)``)
    and :func:`fastdensity.metrics.class_probabilities` (Inception Score over the 1008 logits, as
    the TensorFlow graph and torch-fidelity use them). ``forward`` returns the pool3 features.
    Move it to a GPU with ``.to("cuda")``; on a CPU it takes roughly 0.1–0.5 s per image.
    """

    _fastdensity_input = "inception"

    def __init__(self, weights_path):
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, kernel_size=3)
        self.Mixed_5b = _InceptionA(192, pool_features=32)
        self.Mixed_5c = _InceptionA(256, pool_features=64)
        self.Mixed_5d = _InceptionA(288, pool_features=64)
        self.Mixed_6a = _InceptionB(288)
        self.Mixed_6b = _InceptionC(768, channels_7x7=128)
        self.Mixed_6c = _InceptionC(768, channels_7x7=160)
        self.Mixed_6d = _InceptionC(768, channels_7x7=160)
        self.Mixed_6e = _InceptionC(768, channels_7x7=192)
        self.Mixed_7a = _InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, pool="avg")
        self.Mixed_7c = _InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)
        if weights_path is None:
            warnings.warn("InceptionV3Features(None) has random weights: its features are only good for testing "
                          "the pipeline, not for FID", UserWarning, stacklevel=2)
        else:
            self.load_state_dict(_load_checked(weights_path, self.state_dict()))
        self.eval()

    @staticmethod
    def preprocess(x):
        """Images (n, h, w), (n, 1, h, w) or (n, 3, h, w) in [0, 1] → (n, 3, 299, 299) in [−1, 1]."""
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"InceptionV3Features needs images (n, h, w), (n, 1, h, w) or (n, 3, h, w); "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def _pool3(self, x):
        x = self.preprocess(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)

    def forward(self, x):
        """The 2048-d pool3 features of images ``x`` in [0, 1]."""
        return self._pool3(x)

    def extract_features(self, x):
        """Same as ``forward``: the 2048-d pool3 features."""
        return self._pool3(x)

    def class_logits(self, x):
        """The 1008 class logits (the ``fc`` layer on the pool3 features)."""
        return self.fc(self._pool3(x))


def _load_checked(path, expected):
    """Load a state dict with ``weights_only=True`` and check its keys and shapes against ``expected``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Inception weights file {path!r} not found. fastdensity never downloads weights: "
                                f"get pytorch-fid's {FID_WEIGHTS_NAME} (released with pytorch-fid on GitHub) "
                                f"yourself and pass its path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a safe state dict
        raise ValueError(f"cannot load {path!r} as a PyTorch state dict with weights_only=True: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path!r} does not hold a state dict (a mapping of names to tensors)")
    # Files written before PyTorch 0.4 have no BatchNorm `num_batches_tracked` counters; they play
    # no part in evaluation, so they are neither required nor compared.
    wanted = {k for k in expected if not k.endswith("num_batches_tracked")}
    given = {k for k in state if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(wanted - given), sorted(given - wanted)
    if missing or unexpected:
        raise ValueError(f"{path!r} does not match the FID Inception-v3: {len(missing)} missing keys "
                         f"{missing[:5]}{' …' if len(missing) > 5 else ''}, {len(unexpected)} unexpected keys "
                         f"{unexpected[:5]}{' …' if len(unexpected) > 5 else ''} (expected pytorch-fid's "
                         f"{FID_WEIGHTS_NAME})")
    wrong = [f"{k}: {tuple(state[k].shape)} instead of {tuple(expected[k].shape)}"
             for k in sorted(wanted) if state[k].shape != expected[k].shape]
    if wrong:
        raise ValueError(f"{path!r} has {len(wrong)} tensors of the wrong shape for the FID Inception-v3: "
                         f"{wrong[:5]}")
    merged = dict(expected)
    merged.update({k: state[k] for k in wanted})
    return merged
