"""Deep generative models in PyTorch: the :class:`VAE`, the :class:`GAN` and the :class:`Trainer` they share.

torch is an optional dependency of fastdensity; it is imported here, and only when this module is
imported (``import fastdensity`` never imports it).
"""

try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "fastdensity.generative needs PyTorch: pip install torch (or pip install fastdensity[torch])"
    ) from None

from ._gan import GAN
from ._trainer import Trainer, TrainingHistory, TrainingTask, load_checkpoint
from ._vae import VAE
from ._vae_model import VAEModel

__all__ = ["GAN", "VAE", "Trainer", "TrainingHistory", "TrainingTask", "VAEModel", "load_checkpoint"]
