"""The package's version, in one place: read by the package root, ``io`` (model files record it)
and the command line, none of which imports another for it."""

__version__ = "0.1.0"
