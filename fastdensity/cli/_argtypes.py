"""The command line's argument types: each turns one option's text into its value or raises
``argparse.ArgumentTypeError`` with the one message every command uses for it (a usage error,
exit status 2). Shared by ``_main``, ``_generative`` and ``_bench``."""

from __future__ import annotations

import argparse
import math

from ._files import DATA_SUFFIXES, OUTPUT_SUFFIXES, _suffix


def data_path(text: str) -> str:
    if _suffix(text) not in DATA_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"unsupported data file {text!r}: use one of {', '.join(DATA_SUFFIXES)}"
        )
    return text


def output_path(text: str) -> str:
    if _suffix(text) not in OUTPUT_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"unsupported output file {text!r}: use one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed; got {text!r}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value
