"""torch stays optional: fastdensity never imports it; fastdensity.generative says how to install it."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def test_import_fastdensity_does_not_import_torch():
    out = _run("import sys, fastdensity; print('torch' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_generative_without_torch_says_how_to_install():
    # a meta-path finder that refuses torch: "import torch" fails as if it were not installed
    out = _run("import sys\n"
               "class NoTorch:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] == 'torch':\n"
               "            raise ImportError(\"No module named 'torch'\")\n"
               "sys.meta_path.insert(0, NoTorch())\n"
               "try:\n    import fastdensity.generative\nexcept ImportError as e:\n    print('ImportError:', e)")
    assert out.returncode == 0, out.stderr
    assert "ImportError:" in out.stdout and "pip install torch" in out.stdout
    assert "pip install fastdensity[torch]" in out.stdout
