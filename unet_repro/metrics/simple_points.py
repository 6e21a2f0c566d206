"""Simple points: pixels whose flip changes no topology (the moves of the warping error).

Jain et al. (2010), "Boundary learning by optimization with topological constraints" (CVPR), section 3,
after Bertrand and Malandain (1994), "A new characterization of three-dimensional simple points"
(Pattern Recognition Letters 15): in 2D with 4-connected cells and 8-connected membranes, the centre
of a 3x3 patch is simple when the cells of its neighbourhood form exactly one 4-connected component
4-adjacent to it and the membranes exactly one 8-connected component. The table is built from that
definition; ``tests/test_metrics.py`` compares it with the one of the challenge's Java classes.
"""

from __future__ import annotations

import numpy as np


def _count_components(nodes: list[int], adjacency: dict[int, list[int]]) -> list[set[int]]:
    comps: list[set[int]] = []
    seen: set[int] = set()
    for s in nodes:
        if s in seen:
            continue
        comp, stack = {s}, [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in adjacency[u]:
                if v in nodes and v not in seen:
                    seen.add(v)
                    comp.add(v)
                    stack.append(v)
        comps.append(comp)
    return comps


def _build_simple_point_lut() -> np.ndarray:
    """Simple-point table from the definition (Bertrand & Malandain 1994 topological numbers in 2D)."""
    pos = [(k // 3, k % 3) for k in range(9)]
    ring = [k for k in range(9) if k != 4]

    def adj(conn: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for a in ring:
            ra, ca = pos[a]
            out[a] = [
                b
                for b in ring
                if b != a
                and (
                    abs(pos[b][0] - ra) + abs(pos[b][1] - ca) == 1
                    if conn == 4
                    else max(abs(pos[b][0] - ra), abs(pos[b][1] - ca)) == 1
                )
            ]
        return out

    adj4, adj8 = adj(4), adj(8)
    four_neighbours = {1, 3, 5, 7}
    lut = np.zeros(512, dtype=np.uint8)
    for code in range(512):
        fg = [k for k in ring if (code >> k) & 1]
        bg = [k for k in ring if not (code >> k) & 1]
        t_fg = sum(1 for comp in _count_components(fg, adj4) if comp & four_neighbours)
        t_bg = len(_count_components(bg, adj8))
        lut[code] = 1 if (t_fg == 1 and t_bg == 1) else 0
    return lut


_SIMPLE_LUT = _build_simple_point_lut()


def simple_point_lut() -> np.ndarray:
    """The 512-entry simple-point table (a copy).

    Index bit ``k`` is the value (1 = cell) of row-major position ``k`` of the 3x3 patch, ``k = 4`` the
    centre (ignored). Entry 1: flipping the centre changes no topology, i.e. the cells of the
    neighbourhood have exactly one 4-connected component 4-adjacent to the centre and the membranes
    exactly one 8-connected component (Jain et al. 2010, section 3; Bertrand & Malandain 1994).
    """
    return _SIMPLE_LUT.copy()


def is_simple_point(patch: np.ndarray) -> bool:
    """Whether the centre of a 3x3 binary patch (nonzero = cell) is a simple point."""
    p = np.asarray(patch)
    if p.shape != (3, 3):
        raise ValueError(f"a simple-point test needs a 3x3 patch, got shape {p.shape}")
    code = int(sum((1 << k) for k, v in enumerate(p.ravel()) if v))
    return bool(_SIMPLE_LUT[code])
