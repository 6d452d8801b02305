"""Tables of a run and its comparison with a baseline.

An op *regresses* when its efficiency (rate ÷ probe rate, see ``_runner``) falls below
``(1 - threshold - extra)`` times the baseline's, where ``extra`` is the op's own allowance
(``Case.extra_threshold``, 0 for most ops) for a measured run-to-run variation above the common one. The verdict uses efficiencies only, never absolute
times, so a baseline taken on a quiet machine holds on a loaded one.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _fmt_rate(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    return f"{x:.3g}"


def result_table(result: dict) -> str:
    """The throughput table of one run."""
    lines = ["probes (median of the calls framing the ops):"]
    for kind, probe in result["probes"].items():
        lines.append(f"  {kind:<6} {_fmt_rate(probe['rate'])} {probe['units']}")
    head = f"{'op':<26} {'median s':>9} {'rate':>10} {'units':<19} {'efficiency':>10} {'spread':>7}"
    lines += ["", head, "-" * len(head)]
    for name, op in result["ops"].items():
        planted = f"  (planted +{op['planted']:.0%})" if op.get("planted") else ""
        lines.append(
            f"{name:<26} {op['time_s']:>9.4f} {_fmt_rate(op['rate']):>10} {op['units']:<19} "
            f"{op['efficiency']:>10.4g} {op['spread']:>6.0%}{planted}"
        )
    vs_torch = [(name, op["time_s"], result["ops"][f"torch_{name}"]["time_s"])
                for name, op in result["ops"].items() if f"torch_{name}" in result["ops"]]
    if vs_torch:
        lines += ["", "against torch on the same device (torch time ÷ fastdensity time):"]
        lines += [f"  {name:<26} {torch_t / t:>7.2f}x" for name, t, torch_t in vs_torch]
    lines.append("efficiency = rate ÷ its probe's rate (exp: per exp/s; dgemm: per flop/s), "
                 "median over repetitions")
    return "\n".join(lines)


def other_cpu(result: dict, baseline: dict) -> str | None:
    """Why ``baseline`` was measured on another kind of CPU than ``result`` (None when alike).

    Efficiencies divide out a machine's speed, not its microarchitecture: the same code on a CPU
    with other vector units (AVX2 against AVX-512) or another cache design moves by more than any
    threshold, so such a comparison gives no verdict."""
    here, there = result.get("machine", {}), baseline.get("machine", {})
    for key, what in (("cpu", "CPU model"), ("cpu_family", "CPU family"), ("cpu_model", "CPU model number"),
                      ("vector_isa", "vector extensions")):
        if key in here and key in there and here[key] != there[key]:
            return f"{what} {there[key]!r} in the baseline, {here[key]!r} here"
    return None


def baseline_for(machine: dict, directory, *, for_update: bool = False) -> Path:
    """The baseline in ``directory`` for this kind of machine: the ``cpu*.json`` measured on a CPU
    of this name, family, model number and vector extensions; else (comparing) the legacy
    ``cpu.json``, recorded before family and model were and compared on name and extensions
    alone; ``for_update`` without such a file: a new ``cpu-family<F>-model<M>.json``, so that
    another machine's baseline is never overwritten."""
    directory = Path(directory)
    legacy = directory / "cpu.json"
    keys = ("cpu", "cpu_family", "cpu_model", "vector_isa")
    if any(machine.get(k) is None for k in keys):  # not an x86 Linux /proc/cpuinfo
        return legacy
    for path in sorted(directory.glob("cpu*.json")):
        try:
            there = read_json(path).get("machine", {})
        except (OSError, ValueError):
            continue
        if all(there.get(k) == machine[k] for k in keys):
            return path
    if for_update or not legacy.exists():
        return directory / f"cpu-family{machine['cpu_family']}-model{machine['cpu_model']}.json"
    return legacy


def op_threshold(name: str, result: dict, baseline: dict, threshold: float) -> float:
    """The threshold for op ``name``: the common one plus the op's allowance, as this run records
    it (the baseline's where this run lacks the op)."""
    op = result["ops"].get(name) or baseline["ops"].get(name) or {}
    return threshold + float(op.get("extra_threshold", 0.0))


def compare(result: dict, baseline: dict, threshold: float) -> tuple[list[dict], bool]:
    """Rows (op, baseline, new, ratio, status) and whether any op regressed or is missing."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    for key in ("mode", "backend", "clock", "threads"):
        if baseline.get(key) != result.get(key):
            raise ValueError(
                f"the baseline was measured with {key}={baseline.get(key)!r} and this run with "
                f"{key}={result.get(key)!r}; compare like with like (or --update the baseline)"
            )
    rows, failed = [], False
    for name, base in baseline["ops"].items():
        new = result["ops"].get(name)
        if new is None:
            rows.append({"op": name, "baseline": base["efficiency"], "new": float("nan"),
                         "ratio": float("nan"), "limit": float("nan"), "status": "MISSING"})
            failed = True
            continue
        ratio = new["efficiency"] / base["efficiency"]
        limit = 1.0 - op_threshold(name, result, baseline, threshold)
        status = "ok" if ratio >= limit else "REGRESSION"
        failed |= status == "REGRESSION"
        rows.append({"op": name, "baseline": base["efficiency"], "new": new["efficiency"],
                     "ratio": ratio, "limit": limit, "status": status})
    for name in result["ops"]:
        if name not in baseline["ops"]:
            rows.append({"op": name, "baseline": float("nan"), "new": result["ops"][name]["efficiency"],
                         "ratio": float("nan"), "limit": float("nan"), "status": "new (no baseline)"})
    return rows, failed


def comparison_table(rows: list[dict], threshold: float) -> str:
    head = f"{'op':<26} {'baseline eff':>12} {'new eff':>10} {'new/base':>9} {'limit':>6}  status"
    lines = [head, "-" * len(head)]
    for row in rows:
        ratio = "" if not math.isfinite(row["ratio"]) else f"{row['ratio']:.3f}"
        limit = "" if not math.isfinite(row["limit"]) else f"{row['limit']:.2f}"
        lines.append(f"{row['op']:<26} {row['baseline']:>12.4g} {row['new']:>10.4g} {ratio:>9} "
                     f"{limit:>6}  {row['status']}")
    lines.append(f"an op regresses when new/base < its limit (1 - threshold {threshold:.0%}, less for "
                 "the ops measured to vary more), in two measurements")
    return "\n".join(lines)


def suspects(result: dict, baseline: dict, threshold: float) -> list[str]:
    """Ops below the threshold in this run (to be measured again before a verdict)."""
    out = []
    for name, base in baseline["ops"].items():
        new = result["ops"].get(name)
        if new is not None and (new["efficiency"] / base["efficiency"]
                                < 1.0 - op_threshold(name, result, baseline, threshold)):
            out.append(name)
    return out


def read_json(path) -> dict:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"no baseline file {os.fspath(path)!r}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a benchmark JSON file: {exc}") from None
    if not isinstance(data, dict) or "ops" not in data or not isinstance(data["ops"], dict):
        raise ValueError(f"{os.fspath(path)!r} is not a benchmark JSON file (no 'ops' table)")
    for name, op in data["ops"].items():
        eff = op.get("efficiency") if isinstance(op, dict) else None
        if not isinstance(eff, (int, float)) or not eff > 0:
            raise ValueError(f"{os.fspath(path)!r}: op {name!r} has no positive 'efficiency'")
    return data


def write_json(path, data: dict) -> None:
    """Write atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
