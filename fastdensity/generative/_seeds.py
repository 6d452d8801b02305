"""``seed_from`` (and ``seed_pair``): the one reading of ``random_state`` (None, a non-negative int or a numpy Generator)
shared by the Trainer, the VAE and the GAN."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["seed63", "seed_from", "seed_pair"]


def seed63(entropy=None):
    """A 63-bit seed from ``np.random.SeedSequence(entropy)`` (None: fresh entropy)."""
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def seed_from(random_state, salt=None):
    """A 63-bit seed: fresh for None, one draw of a numpy Generator, or the int itself — mixed with
    ``salt`` through a SeedSequence when one is given, so that two users of the same int get
    independent streams."""
    if random_state is None:
        return seed63()
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state) if salt is None else seed63([int(random_state), salt])
    raise ValueError(f"random_state must be None, a non-negative int or a numpy Generator; got {random_state!r}")


def seed_pair(random_state):
    """Two independent 63-bit seeds from ``seed_from(random_state)`` (e.g. weights and shuffling)."""
    a, b = np.random.SeedSequence(seed_from(random_state)).generate_state(2, dtype=np.uint64)
    return int(a >> np.uint64(1)), int(b >> np.uint64(1))
