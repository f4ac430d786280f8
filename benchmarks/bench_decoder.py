"""What do the DSConv decoder and the sparse up-sampling cost and save against the dense forms?

- parameter counts of the mesh decoder (whole decoder and its spiral layers) for DSConv and
  the dense spiral layer, at the paper's sizes and at the ``small`` sizes;
- the time to build the mesh hierarchy (no cache) of the embedded hand and of a 6890-vertex
  torus (SMPL's vertex count), and to load the hand's from the cache;
- forward + backward time of the decoder alone (keypoint features -> vertices) on the CPU
  at batch 16: {DSConv, dense} spiral layers × {sparse gather, dense matrix} up-sampling,
  and of the four up-sampling steps alone.

Times are medians of interleaved repetitions in one run; ratios are relative to the default
(DSConv with sparse up-sampling; > 1: the default is faster).

    python -m benchmarks.bench_decoder            # small sizes, batch 16
    python -m benchmarks.bench_decoder --threads 1
    python -m benchmarks.bench_decoder --quick    # a smoke test
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
import trimesh

from benchmarks._timing import fmt_time, time_interleaved
from handdgp_models.config import load_config
from handdgp_models.hand import load_mano
from handdgp_models.model import NetworkConfig, load_hierarchy, upsample
from handdgp_models.model.mesh_hierarchy import build_hierarchy
from handdgp_models.model.network import _MeshDecoder, backbone_channels

_SMALL_MODEL = load_config("small").model
SMALL = {"mesh_channels": _SMALL_MODEL.mesh_channels,
         "feature_channels": _SMALL_MODEL.feature_channels}


def _count(modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def parameter_table(hier, backbone_channels: dict[str, int]) -> list[str]:
    rows = ["| sizes | decoder | spiral layers | whole mesh decoder |", "|---|---|---|---|"]
    for name, sizes in (("paper", {}), ("small", SMALL)):
        for decoder in ("dsconv", "dense"):
            dec = _MeshDecoder(backbone_channels[name], NetworkConfig(decoder=decoder, **sizes),
                               hier, 21)
            rows.append(f"| {name} | {decoder} | {_count([*dec.convs, dec.out]):,} | "
                        f"{_count([dec]):,} |")
    return rows


def _median_build(v, f, reps: int):
    times, hier = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        hier = build_hierarchy(v, f)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], hier


def build_table(hand, reps: int, body_sections: tuple[int, int]) -> list[str]:
    body = trimesh.creation.torus(1.0, 0.3, major_sections=body_sections[0],
                                  minor_sections=body_sections[1])
    cases = {"embedded hand": (hand.template.numpy(), hand.faces.numpy()),
             f"{len(body.vertices)}-vertex torus": (body.vertices, body.faces)}
    rows = ["| mesh | build (no cache) | levels |", "|---|---|---|"]
    for name, (v, f) in cases.items():
        t, hier = _median_build(v, f, reps)
        rows.append(f"| {name} | {fmt_time(t)} | {'/'.join(map(str, hier.sizes))} |")
    with tempfile.TemporaryDirectory() as cache:
        load_hierarchy(hand.template, hand.faces, cache_dir=cache)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            load_hierarchy(hand.template, hand.faces, cache_dir=cache)
            times.append(time.perf_counter() - t0)
    rows.append(f"| embedded hand, from the cache | {fmt_time(sorted(times)[len(times) // 2])}"
                " | |")
    return rows


def _decode(dec: _MeshDecoder, f: torch.Tensor, ups) -> torch.Tensor:
    """The decoder's own loop with a pluggable up-sampling (checked against ``decode``)."""
    x = dec.inp(dec.lift @ f)
    for k, conv in enumerate(dec.convs):
        x = F.relu(conv(ups[dec.levels - 1 - k](x)))
    return dec.out(x)


def speed_table(hier, batch: int, reps: int, budget: float) -> list[str]:
    torch.manual_seed(0)
    sparse = [lambda x, i=i: upsample(x, hier.up_index[i], hier.up_weight[i].float())
              for i in range(len(hier.up_index))]
    mats = [m.float() for m in hier.up]
    dense = [lambda x, m=m: m @ x for m in mats]
    f = torch.randn(batch, 21, SMALL["feature_channels"])
    fns, decoders = {}, {}
    for decoder in ("dsconv", "dense"):
        dec = _MeshDecoder(64, NetworkConfig(decoder=decoder, **SMALL), hier, 21)
        decoders[decoder] = dec
        torch.testing.assert_close(_decode(dec, f, sparse), dec.decode(f))
        torch.testing.assert_close(_decode(dec, f, dense), dec.decode(f), rtol=1e-4, atol=1e-6)
        for up_name, ups in (("sparse", sparse), ("dense", dense)):
            def step(dec=dec, ups=ups):
                dec.zero_grad(set_to_none=True)
                _decode(dec, f, ups).square().mean().backward()
            fns[(decoder, up_name)] = step
    med = time_interleaved({f"{d}/{u}": fn for (d, u), fn in fns.items()}, reps=reps,
                           budget_s=budget)
    # the four up-sampling steps alone, at the channels the small decoder feeds them
    channels = SMALL["mesh_channels"]
    xs = [torch.randn(batch, hier.sizes[3 - k + 1], channels[k], requires_grad=True)
          for k in range(4)]

    def up_only(ups):
        def step():
            sum(ups[3 - k](x).square().mean() for k, x in enumerate(xs)).backward()
        return step

    up_med = time_interleaved({"sparse": up_only(sparse), "dense": up_only(dense)}, reps=reps,
                              budget_s=budget)
    base = med["dsconv/sparse"]
    rows = [f"| spiral layer | up-sampling | forward + backward (B={batch}) | vs dsconv/sparse |",
            "|---|---|---|---|"]
    for name, t in med.items():
        d, u = name.split("/")
        kind = "gather" if u == "sparse" else "matrix"
        rows.append(f"| {d} | {u} {kind} | {fmt_time(t)} | {t / base:.2f} |")
    rows += ["", f"| up-sampling alone (4 steps, B={batch}) | forward + backward | vs sparse |",
             "|---|---|---|"]
    for name, t in up_med.items():
        rows.append(f"| {name} | {fmt_time(t)} | {t / up_med['sparse']:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="few repetitions, a smoke test")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps, budget, build_reps = (3, 1.0, 1) if args.quick else (args.reps, 20.0, 5)
    body_sections = (20, 13) if args.quick else (106, 65)  # 106 x 65 = 6890, SMPL's count
    batch = 2 if args.quick else args.batch
    hand = load_mano()
    with tempfile.TemporaryDirectory() as cache:
        hier = load_hierarchy(hand.template, hand.faces, cache_dir=cache)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n")
    channels = {"paper": backbone_channels(NetworkConfig().backbone),
                "small": backbone_channels(_SMALL_MODEL.backbone)}
    print("\n".join(parameter_table(hier, channels)), "\n")
    print("\n".join(build_table(hand, build_reps, body_sections)), "\n")
    print("\n".join(speed_table(hier, batch, reps, budget)))


if __name__ == "__main__":
    main()
