"""The device tests' random inputs: fixed outside GPU tests, fresh and printed inside, replayable."""

from __future__ import annotations

import random_inputs


def test_fixed_seed_outside_gpu_tests(monkeypatch, capsys):
    monkeypatch.delenv("FASTDENSITY_TEST_SEED", raising=False)
    assert random_inputs.FRESH is False  # conftest: this test has no gpu marker
    assert random_inputs.input_seed(7) == 7
    assert random_inputs.input_rng(7).random() == random_inputs.input_rng(7).random()
    assert capsys.readouterr().out == ""


def test_fresh_seeds_are_printed_and_replayable(monkeypatch, capsys):
    monkeypatch.delenv("FASTDENSITY_TEST_SEED", raising=False)
    monkeypatch.setattr(random_inputs, "FRESH", True)
    seeds = {random_inputs.input_seed(7) for _ in range(4)}
    assert len(seeds) == 4 and 7 not in seeds
    printed = capsys.readouterr().out
    assert all(f"FASTDENSITY_TEST_SEED={seed}" in printed for seed in seeds)
    replay = seeds.pop()
    monkeypatch.setenv("FASTDENSITY_TEST_SEED", str(replay))
    assert random_inputs.input_seed(7) == replay
    monkeypatch.setattr(random_inputs, "FRESH", False)
    assert random_inputs.input_seed(7) == replay  # the override also replays an emulation run
