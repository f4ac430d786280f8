"""How much time and memory does loading the full-size FreiHAND annotations take?

Writes an annotation set of the official training size (32,560 entries of
``training_{K,xyz,verts,mano}.json`` in the release's layout and number formatting, as
``json.dump`` writes it; the vertex file alone is about 1.5 GB) into ``--tmp``, then
measures, each in a fresh subprocess:

- building the cache: the first ``FreiHAND(root)``, which converts the four files into
  float32 ``.npy`` arrays with the streaming parser;
- a cached load: the next ``FreiHAND(root)``, which validates and memory-maps them;
- for comparison, plain ``json.load`` of ``training_verts.json`` followed by
  ``np.asarray(..., float32)`` (skipped when the machine lacks the memory for it).

Times are measured inside the child (the operation only; interpreter start and imports
excluded), medians of ``--repeats`` runs. Peak RSS is the child's own ``ru_maxrss``
(``getrusage(RUSAGE_SELF)`` after the step); the parent imports nothing heavy, so what the
child inherits across fork + exec is small. The
"imports" columns are the child's resident and peak RSS just before the step starts
(Python, NumPy and, for the loader, PyTorch): a step needs memory beyond its imports only
where its peak exceeds the import peak.
The generated files are deleted at the end unless ``--keep``.

    python -m benchmarks.bench_freihand_cache --tmp /path/with/3GB/free
    python -m benchmarks.bench_freihand_cache --tmp /tmp/x --entries 500   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_ENTRIES = 32_560
# json.load holds each number as a Python float in nested lists, plus the file's text: a
# peak of several times the file size (measured ~4x); demand this much headroom to run it
_JSON_LOAD_BYTES_PER_FILE_BYTE = 6
_GIB = 1 << 30


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak so far) of this process in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
    return float("nan")


def _peak_rss_mb() -> float:
    """This process's own ``ru_maxrss`` in MiB. (``os.wait4`` in the parent would also count
    grandchildren: PyTorch's import spawns helper processes whose exec inherits the peak.)"""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ---------------------------------------------------------------- children (one job each)

def _generate(root: Path, entries: int, seed: int = 0, batch: int = 1024) -> None:
    """Write the four training annotation files, ``batch`` entries in memory at a time."""
    import numpy as np

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = ("K", "xyz", "verts", "mano")
    files = {n: open(root / f"training_{n}.json", "w") for n in names}  # noqa: SIM115
    try:
        for f in files.values():
            f.write("[")
        for start in range(0, entries, batch):
            m = min(batch, entries - start)
            f_px = rng.uniform(450, 800, size=m)
            K = np.zeros((m, 3, 3))
            K[:, 0, 0], K[:, 1, 1] = f_px, f_px * rng.uniform(0.99, 1.01, size=m)
            K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = 112 + rng.normal(0, 3, m), 112, 1.0
            centre = np.stack([rng.normal(0, 0.05, m), rng.normal(0, 0.05, m),
                               rng.uniform(0.4, 1.0, m)], axis=1)[:, None]
            # float32 values printed as Python floats, as in the release (MANO is float32)
            arrays = {
                "K": K.astype(np.float32),
                "xyz": (centre + rng.normal(0, 0.04, (m, 21, 3))).astype(np.float32),
                "verts": (centre + rng.normal(0, 0.04, (m, 778, 3))).astype(np.float32),
                "mano": rng.normal(0, 0.5, (m, 1, 61)).astype(np.float32),
            }
            for name, arr in arrays.items():
                f = files[name]
                for k in range(m):
                    if start + k:
                        f.write(", ")
                    f.write(json.dumps(arr[k].tolist()))
        for f in files.values():
            f.write("]")
    finally:
        for f in files.values():
            f.close()


def _child(mode: str, root: Path, cache_dir: Path) -> dict:
    import time

    import numpy as np

    if mode == "json_load":
        base, base_peak = _status_mb("VmRSS"), _status_mb("VmHWM")
        t0 = time.perf_counter()
        with open(root / "training_verts.json") as f:
            data = json.load(f)
        arr = np.asarray(data, dtype=np.float32)
        del data
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "rss_before_mb": base, "peak_before_mb": base_peak,
                "shape": list(arr.shape)}
    from handdgp_models.data import FreiHAND

    base, base_peak = _status_mb("VmRSS"), _status_mb("VmHWM")
    t0 = time.perf_counter()
    ds = FreiHAND(root, "training", cache_dir=cache_dir)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before_mb": base, "peak_before_mb": base_peak,
            "shape": list(ds.verts.shape),
            "memmap": isinstance(ds.verts, np.memmap)}


# ---------------------------------------------------------------- parent (stdlib only)

def _run_child(*args: str) -> dict:
    """Run this module as a child and return the JSON object it prints last."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_freihand_cache", *args],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _mem_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _measure(label: str, repeats: int, before, *args: str) -> list:
    runs = []
    for _ in range(repeats):
        before()
        res = _run_child(*args)
        runs.append((res["seconds"], res["peak_mb"], res["rss_before_mb"],
                     res["peak_before_mb"]))
    return [label, *(statistics.median(col) for col in zip(*runs, strict=True)), len(runs)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tmp", help="directory for the generated files (required)")
    parser.add_argument("--entries", type=int, default=OFFICIAL_ENTRIES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-load-repeats", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", choices=("generate", "build", "load", "json_load"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "generate":
        _generate(Path(args.root), args.entries)
        print(json.dumps({"peak_mb": _peak_rss_mb()}))
        return
    if args.child:
        result = _child(args.child, Path(args.root), Path(args.cache))
        print(json.dumps({**result, "peak_mb": _peak_rss_mb()}))
        return

    if not args.tmp:
        parser.error("--tmp: a directory for the generated files is required")
    work = Path(tempfile.mkdtemp(prefix="freihand_cache_bench_", dir=args.tmp))
    root, cache = work / "FreiHAND", work / "cache"
    try:
        gen_peak = _run_child("--child", "generate", "--root", str(root),
                              "--entries", str(args.entries))["peak_mb"]
        sizes = {p.name: p.stat().st_size for p in sorted(root.glob("*.json"))}
        verts_bytes = sizes["training_verts.json"]
        common = ("--root", str(root), "--cache", str(cache))
        rows = [_measure("build cache (first load)", args.repeats,
                         lambda: shutil.rmtree(cache, ignore_errors=True),
                         "--child", "build", *common),
                _measure("cached load (memory map)", args.repeats, lambda: None,
                         "--child", "load", *common)]
        cache_bytes = sum(p.stat().st_size for p in cache.glob("*.npy"))
        need = _JSON_LOAD_BYTES_PER_FILE_BYTE * verts_bytes + 2 * _GIB
        note = None
        if args.json_load_repeats <= 0:
            note = "json.load comparison not run (--json-load-repeats 0)"
        elif _mem_available_bytes() < need:
            note = (f"json.load comparison skipped: needs about {need / _GIB:.1f} GiB, "
                    f"{_mem_available_bytes() / _GIB:.1f} GiB available")
        else:
            rows.append(_measure("json.load(training_verts.json)", args.json_load_repeats,
                                 lambda: None, "--child", "json_load", *common))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"FreiHAND annotation cache: {args.entries:,} training entries; JSON "
          f"{sum(sizes.values()) / 1e9:.2f} GB (training_verts.json "
          f"{verts_bytes / 1e9:.2f} GB); cache {cache_bytes / 1e6:.0f} MB of float32 .npy")
    print(f"(generator peak RSS {gen_peak:.0f} MiB; medians of the runs shown)")
    header = (f"{'step':32s} {'time (s)':>9s} {'peak RSS':>9s} {'imports: RSS':>13s} "
              f"{'imports: peak':>14s} {'runs':>5s}")
    print(header)
    print("-" * len(header))
    for label, seconds, peak, base, base_peak, n in rows:
        print(f"{label:32s} {seconds:9.2f} {peak:9.0f} {base:13.0f} {base_peak:14.0f} {n:5d}")
    print("(RSS in MiB; 'imports': the child before the step starts, i.e. Python, NumPy and, "
          "for the loader, PyTorch)")
    if note:
        print(note)
    if args.keep:
        print(f"files kept in {work}")


if __name__ == "__main__":
    main()
