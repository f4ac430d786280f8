"""Vertex neighbourhoods in OpenMesh's order: a half-edge mesh built face by face as OpenMesh
builds one.

MobRecon's spirals (and so the official HandDGP weights) depend on the order in which
OpenMesh's default vertex-vertex circulator (``mesh.vv(v)``) lists a vertex's neighbours. That
order is clockwise around the vertex (each step goes to ``next(opposite(h))``) and starts at the
vertex's stored outgoing half-edge, which is decided while the faces are added one by one: a
boundary half-edge for a boundary vertex, otherwise whichever half-edge the insertion left
there. :class:`HalfedgeMesh` keeps the same connectivity as OpenMesh's ``PolyConnectivity``
(one edge = half-edges ``2e`` and ``2e + 1``; ``add_face`` with its patch re-linking, its
next-pointer cache and its outgoing-half-edge adjustment) and nothing else, so its
:meth:`~HalfedgeMesh.vertex_vertices` lists the neighbours in OpenMesh's order. Like
``openmesh.TriMesh(points, faces)``, :func:`vertex_rings` skips (and reports) faces OpenMesh
rejects as non-manifold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["HalfedgeMesh", "vertex_rings"]

_NONE = -1  # an invalid handle


class HalfedgeMesh:
    """Half-edge connectivity of a polygon mesh, in OpenMesh's construction order.

    Args:
        num_vertices: vertices ``0 .. num_vertices - 1`` (isolated until faces use them).
    """

    def __init__(self, num_vertices: int) -> None:
        self.outgoing_of = [_NONE] * int(num_vertices)  # the vertex's stored half-edge
        self.to_vertex: list[int] = []
        self.next: list[int] = []
        self.prev: list[int] = []
        self.face: list[int] = []
        self.num_faces = 0

    # --- the primitives of OpenMesh's ArrayKernel
    def _new_edge(self, start: int, end: int) -> int:
        h = len(self.to_vertex)
        self.to_vertex += [end, start]
        self.next += [_NONE, _NONE]
        self.prev += [_NONE, _NONE]
        self.face += [_NONE, _NONE]
        return h

    def _set_next(self, h: int, n: int) -> None:
        self.next[h] = n
        self.prev[n] = h

    def _boundary_halfedge(self, h: int) -> bool:
        return self.face[h] == _NONE

    def _boundary_vertex(self, v: int) -> bool:
        h = self.outgoing_of[v]
        return h == _NONE or self.face[h] == _NONE

    def outgoing(self, v: int) -> Iterator[int]:
        """The half-edges leaving ``v``, clockwise from its stored one (OpenMesh's default
        ``voh`` circulator)."""
        start = self.outgoing_of[v]
        if start == _NONE:
            return
        h = start
        while True:
            yield h
            h = self.next[h ^ 1]  # clockwise rotation: next(opposite(h))
            if h == start:
                return

    def vertex_vertices(self, v: int) -> list[int]:
        """The neighbours of ``v`` in the order of OpenMesh's ``mesh.vv(v)``."""
        return [self.to_vertex[h] for h in self.outgoing(v)]

    def _find_halfedge(self, start: int, end: int) -> int:
        for h in self.outgoing(start):
            if self.to_vertex[h] == end:
                return h
        return _NONE

    def _adjust_outgoing(self, v: int) -> None:
        for h in self.outgoing(v):
            if self._boundary_halfedge(h):
                self.outgoing_of[v] = h
                return

    # --- OpenMesh's PolyConnectivity::add_face
    def add_face(self, vertices: Sequence[int]) -> bool:
        """Add a face (vertex ids in order); False, and nothing changed, where OpenMesh
        rejects it (a complex vertex or edge, or a patch that cannot be re-linked)."""
        vs = [int(v) for v in vertices]
        n = len(vs)
        edges, is_new = [], []
        for i in range(n):
            if not self._boundary_vertex(vs[i]):
                return False  # complex vertex
            h = self._find_halfedge(vs[i], vs[(i + 1) % n])
            if h != _NONE and not self._boundary_halfedge(h):
                return False  # complex edge
            edges.append(h)
            is_new.append(h == _NONE)
        cache = self._relink_patches(edges, is_new)
        if cache is None:
            return False
        for i in range(n):
            if is_new[i]:
                edges[i] = self._new_edge(vs[i], vs[(i + 1) % n])
        fh = self.num_faces
        self.num_faces += 1
        needs_adjust = [False] * n
        for i in range(n):
            ii = (i + 1) % n
            cache += self._link_corner(vs[ii], edges[i], edges[ii], is_new[i], is_new[ii])
            if not (is_new[i] or is_new[ii]):
                needs_adjust[ii] = self.outgoing_of[vs[ii]] == edges[ii]
            self.face[edges[i]] = fh
        for h, nxt in cache:
            self._set_next(h, nxt)
        for i in range(n):
            if needs_adjust[i]:
                self._adjust_outgoing(vs[i])
        return True

    def _relink_patches(self, edges: list[int], is_new: list[bool]) -> list | None:
        """Next-pointer changes that move a patch out of the new face's way, or None when no
        free gap exists."""
        cache = []
        n = len(edges)
        for i in range(n):
            ii = (i + 1) % n
            if is_new[i] or is_new[ii]:
                continue
            inner_prev, inner_next = edges[i], edges[ii]
            if self.next[inner_prev] == inner_next:
                continue
            boundary_prev = self._free_gap(inner_next ^ 1)
            if boundary_prev is None:
                return None
            boundary_next = self.next[boundary_prev]
            if boundary_prev == inner_prev:
                return None  # patch re-linking failed
            patch_start, patch_end = self.next[inner_prev], self.prev[inner_next]
            cache += [(boundary_prev, patch_start), (patch_end, boundary_next),
                      (inner_prev, inner_next)]
        return cache

    def _free_gap(self, outer_prev: int) -> int | None:
        """The first boundary half-edge rotating from ``outer_prev`` (None if there is none:
        OpenMesh would loop; a consistent mesh always has one)."""
        h = outer_prev
        for _ in range(len(self.next)):
            h = self.next[h] ^ 1
            if self._boundary_halfedge(h):
                return h
        return None

    def _link_corner(self, v: int, inner_prev: int, inner_next: int, prev_new: bool,
                     next_new: bool) -> list[tuple[int, int]]:
        """Next-pointer changes at corner ``v`` between the face's half-edges ``inner_prev``
        (into ``v``) and ``inner_next`` (out of ``v``); sets ``v``'s outgoing half-edge as
        OpenMesh does."""
        if not (prev_new or next_new):
            return []
        outer_prev, outer_next = inner_next ^ 1, inner_prev ^ 1
        if prev_new and not next_new:
            cache = [(self.prev[inner_next], outer_next)]
            self.outgoing_of[v] = outer_next
        elif next_new and not prev_new:
            boundary_next = self.next[inner_prev]
            cache = [(outer_prev, boundary_next)]
            self.outgoing_of[v] = boundary_next
        elif self.outgoing_of[v] == _NONE:
            self.outgoing_of[v] = outer_next
            cache = [(outer_prev, outer_next)]
        else:
            boundary_next = self.outgoing_of[v]
            cache = [(self.prev[boundary_next], outer_next), (outer_prev, boundary_next)]
        return cache + [(inner_prev, inner_next)]


def vertex_rings(faces: np.ndarray, num_vertices: int) -> tuple[list[list[int]], int]:
    """Every vertex's neighbours in OpenMesh's ``vv`` order for a mesh built as
    ``openmesh.TriMesh(points, faces)`` builds it (faces added in order).

    Args:
        faces: (F, k) vertex ids (triangles: k = 3); ids outside ``[0, num_vertices)`` are
            dropped from their face and faces left with fewer than 3 vertices are skipped,
            as OpenMesh's array constructor does.
        num_vertices: V.

    Returns:
        ``(rings, rejected)``: V lists of neighbour ids, and how many faces OpenMesh would
        have rejected (non-manifold) and so left out.
    """
    mesh = HalfedgeMesh(num_vertices)
    rejected = 0
    if num_vertices >= 3:  # OpenMesh adds no face to a mesh of fewer than 3 vertices
        for face in np.asarray(faces, dtype=np.int64).reshape(len(faces), -1):
            ids = [int(v) for v in face if 0 <= v < num_vertices]
            if len(ids) >= 3 and not mesh.add_face(ids):
                rejected += 1
    return [mesh.vertex_vertices(v) for v in range(num_vertices)], rejected
