"""The ``fastdensity`` command line and its demo (``fastdensity --help``; ``python -m fastdensity``).

``_main`` parses and runs the commands (fit, score, sample, demo, bench), ``_generative`` the
torch ones (train, evaluate), ``_files`` reads and writes their files, ``_demo`` and
``_demo_generative`` are ``fastdensity demo``. Only ``fastdensity.__main__`` imports it: it sits on
the top layer, above the estimators it drives.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
