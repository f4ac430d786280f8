"""Write ``openmesh_spirals.json``: test meshes with OpenMesh's neighbour order and MobRecon's
spirals, the reference for ``handdgp_models.model.halfedge`` and ``.mobrecon``.

Needs ``openmesh`` and ``scikit-learn`` and a checkout of MobRecon's repository
(SeanChenxy/HandMesh), whose ``utils/generate_spiral_seq.py`` computes the spirals::

    python tests/handdgp_models/data/make_openmesh_fixture.py --handmesh PATH/TO/HandMesh
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("openmesh_spirals.json")
LENGTH = 9


def _meshes(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=1)
    faces = np.roll(sphere.faces[rng.permutation(len(sphere.faces))], 1, axis=1)
    verts = sphere.vertices + rng.normal(scale=1e-3, size=sphere.vertices.shape)
    open_faces = faces[rng.random(len(faces)) > 0.25]  # boundaries, pinched vertices
    soup = np.array([rng.choice(15, 3, replace=False) for _ in range(30)])
    tetra = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    # a tetrahedron, a far triangle and three lone vertices: the rings run out
    parts_v = np.vstack([rng.normal(size=(4, 3)), rng.normal(size=(3, 3)) + 10.0,
                         rng.normal(size=(3, 3)) + 20.0])
    parts_f = np.vstack([tetra, [[4, 5, 6]]])
    return {"closed_sphere": (verts, faces), "open_sphere": (verts, open_faces),
            "soup": (rng.normal(size=(15, 3)), soup), "components": (parts_v, parts_f)}


def main() -> None:
    import openmesh as om

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--handmesh", type=Path, required=True, help="MobRecon's repository")
    args = p.parse_args()
    spec = importlib.util.spec_from_file_location(
        "generate_spiral_seq", args.handmesh / "utils" / "generate_spiral_seq.py")
    spiral_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spiral_module)
    out = {"openmesh": version("openmesh"), "scikit-learn": version("scikit-learn"),
           "length": LENGTH, "meshes": {}}
    for name, (verts, faces) in _meshes(np.random.default_rng(0)).items():
        mesh = om.TriMesh(np.array(verts, dtype=np.float64), np.array(faces))
        rings = [[u.idx() for u in mesh.vv(v)] for v in mesh.vertices()]
        spirals = spiral_module.extract_spirals(mesh, seq_length=LENGTH, dilation=1)
        out["meshes"][name] = {"vertices": np.asarray(verts).tolist(),
                               "faces": np.asarray(faces).tolist(),
                               "faces_added": int(mesh.n_faces()), "rings": rings,
                               "spirals": [list(map(int, s)) for s in spirals]}
    OUT.write_text(json.dumps(out) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
