"""Random inputs for the device tests: fixed seeds on the CPU, fresh ones on a real GPU.

The host-emulation tests run in CI and must be reproducible, so they draw from fixed seeds. The
GPU tests (``@pytest.mark.gpu``) promise fresh random inputs every run, which is how they find the
inputs nobody thought of; the seed they use is printed (pytest shows it with a failure), and
``FASTDENSITY_TEST_SEED=<seed>`` replays it. ``conftest.py`` sets ``FRESH`` for the GPU tests.
"""

from __future__ import annotations

import os

import numpy as np

FRESH = False


def input_seed(seed: int) -> int:
    """``seed``, or in a GPU test a fresh one (printed); ``FASTDENSITY_TEST_SEED`` overrides both."""
    override = os.environ.get("FASTDENSITY_TEST_SEED")
    if override is not None:
        seed = int(override)
    elif FRESH:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    if FRESH or override is not None:
        print(f"random inputs: seed {seed} (replay with FASTDENSITY_TEST_SEED={seed})")
    return seed


def input_rng(seed: int) -> np.random.Generator:
    """A generator from ``input_seed(seed)``."""
    return np.random.default_rng(input_seed(seed))
