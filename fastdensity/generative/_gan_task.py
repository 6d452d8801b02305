"""One GAN training step for the shared :class:`Trainer`: the discriminator and generator updates of
each loss (non-saturating, WGAN-GP, hinge), packing, DiffAugment, R1, the linear learning-rate decay
and the EMA of the generator's weights; ``GAN.fit`` builds it from its resolved parameters."""

from __future__ import annotations

import torch

from ._gan_augment import diff_augment
from ._gan_conv import EMA
from ._gan_losses import (discriminator_loss, generator_loss, gradient_penalty, hinge_discriminator_loss,
                          hinge_generator_loss, r1_penalty, wgan_critic_loss, wgan_generator_loss)
from ._gan_networks import pack_samples


class _GANTask:
    """The :class:`TrainingTask` of a GAN: per Trainer batch, ``n_critic`` discriminator steps (one
    per ``batch_size`` slice of the batch) and one generator step.

    The learning rates stay at their initial value, then decay linearly to 0 over the last
    ``decay_fraction`` of ``total_steps`` generator steps (the step counter is checkpointed).
    Noise comes from the global torch RNG, which the Trainer seeds and checkpoints.
    """

    def __init__(self, generator, discriminator, *, loss, latent_dim, pack, batch_size, n_critic, gp_weight,
                 learning_rate, betas, decay_fraction, total_steps, d_learning_rate=None, r1_weight=0.0,
                 augment=(), ema_decay=0.0):
        self.G, self.D = generator, discriminator
        self.loss, self.latent_dim, self.pack = loss, latent_dim, pack
        self.batch_size, self.n_critic, self.gp_weight = batch_size, n_critic, gp_weight
        self.learning_rate, self.decay_fraction, self.total_steps = learning_rate, decay_fraction, total_steps
        self.d_learning_rate = learning_rate if d_learning_rate is None else d_learning_rate
        self.r1_weight, self.augment = r1_weight, tuple(augment)
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=betas)
        self.opt_d = torch.optim.Adam(discriminator.parameters(), lr=self.d_learning_rate, betas=betas)
        self.ema = EMA(generator, ema_decay) if ema_decay > 0 else None
        self.step = 0

    def modules(self):
        out = {"generator": self.G, "discriminator": self.D}
        if self.ema is not None:
            out["generator_ema"] = self.ema.module
        return out

    def optimizers(self):
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, state):
        self.step = int(state["step"])

    def _set_learning_rate(self):
        start = self.total_steps * (1.0 - self.decay_fraction)
        factor = 1.0
        if self.decay_fraction > 0 and self.step >= start:
            factor = max(0.0, 1.0 - (self.step - start) / (self.total_steps - start))
        for opt, lr in ((self.opt_g, self.learning_rate), (self.opt_d, self.d_learning_rate)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def _packable(self, real):
        """``real`` cut to a multiple of ``pack`` rows (repeated cyclically when shorter than one pack)."""
        m = (real.shape[0] // self.pack) * self.pack
        if m == 0:
            return real[torch.arange(self.pack, device=real.device) % real.shape[0]]
        return real[:m]

    def _noise(self, n, device):
        return torch.randn(n, self.latent_dim, device=device)

    def _view(self, x):
        """What the discriminator sees of samples ``x``: augmented (DiffAugment), then packed."""
        if self.augment:
            x = diff_augment(x, self.augment)
        return pack_samples(x, self.pack)

    def train_step(self, batch):
        self._set_learning_rate()
        d_losses, penalties, r1s = [], [], []
        for real in batch.split(self.batch_size):
            real = self._packable(real)
            with torch.no_grad():
                fake = self.G(self._noise(real.shape[0], real.device))
            real_p, fake_p = self._view(real), self._view(fake)
            real_out, fake_out = self.D(real_p), self.D(fake_p)
            if self.loss == "non_saturating":
                d_loss = discriminator_loss(real_out, fake_out)
            elif self.loss == "hinge":
                d_loss = hinge_discriminator_loss(real_out, fake_out)
            else:
                d_loss = wgan_critic_loss(real_out, fake_out)
            if self.gp_weight > 0:
                alpha = torch.rand(real_p.shape[0], device=real.device)
                penalty = gradient_penalty(self.D, real_p, fake_p, alpha)
                penalties.append(penalty.detach())
                d_loss = d_loss + self.gp_weight * penalty
            if self.r1_weight > 0:
                r1 = r1_penalty(self.D, real_p)
                r1s.append(r1.detach())
                d_loss = d_loss + 0.5 * self.r1_weight * r1
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            d_losses.append(d_loss.detach())
        n_fake = self.pack * max(1, min(self.batch_size, batch.shape[0]) // self.pack)
        fake_out = self.D(self._view(self.G(self._noise(n_fake, batch.device))))
        if self.loss == "non_saturating":
            g_loss = generator_loss(fake_out)
        elif self.loss == "hinge":
            g_loss = hinge_generator_loss(fake_out)
        else:
            g_loss = wgan_generator_loss(fake_out)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.step)
        self.step += 1
        out = {"generator_loss": g_loss.detach(), "discriminator_loss": torch.stack(d_losses).mean()}
        if penalties:
            out["gradient_penalty"] = torch.stack(penalties).mean()
        if r1s:
            out["r1_penalty"] = torch.stack(r1s).mean()
        return out

    def eval_step(self, batch):
        return {}
