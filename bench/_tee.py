"""``Tee``: the bench scripts' output, printed and (with ``--out``) written to a results file."""


class Tee:
    """Call with values as ``print``: the line goes to stdout and, when ``path`` is given, to that file
    (flushed per line, so that an interrupted run keeps what it printed)."""

    def __init__(self, path, append=False):
        self.f = open(path, "a" if append else "w") if path else None

    def __call__(self, *args):
        line = " ".join(str(a) for a in args)
        print(line, flush=True)
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()
