"""Which detection continues which track: a one-to-one assignment on a similarity matrix.

Only pairs at or above a threshold may match. Pairs are split into independent groups (tracks
and detections linked through candidate pairs); a group of one pair, by far the most common,
matches at once; a small group (people crossing) is solved exactly, by trying every assignment
and keeping the one with the most pairs, then the highest total similarity; a larger group
(a crowd) is matched greedily, best pair first. At most tens of tracks: no SciPy on the board.
"""

from __future__ import annotations

import numpy as np

EXACT_MAX = 4  # tracks and detections in a group solved exactly (209 assignments at most)


def match(similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the matched pairs; every row and column appears at most once."""
    rows, cols = np.nonzero(similarity >= threshold)
    if len(rows) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    if len(np.unique(rows)) == len(rows) and len(np.unique(cols)) == len(cols):
        return rows, cols  # no conflicts: every candidate pair stands alone
    out_r: list[int] = []
    out_c: list[int] = []
    for group_r, group_c in _groups(rows.tolist(), cols.tolist()):
        if len(group_r) == 1 and len(group_c) == 1:
            out_r += group_r
            out_c += group_c
            continue
        sub = similarity[np.ix_(group_r, group_c)]
        if len(group_r) <= EXACT_MAX and len(group_c) <= EXACT_MAX:
            pairs = _exact(sub, threshold)
        else:
            pairs = _greedy(sub, threshold)
        out_r += [group_r[i] for i, _ in pairs]
        out_c += [group_c[j] for _, j in pairs]
    return np.array(out_r, np.intp), np.array(out_c, np.intp)


def _groups(rows: list[int], cols: list[int]) -> list[tuple[list[int], list[int]]]:
    """Connected groups of the bipartite graph of candidate pairs (union-find on rows and columns)."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node: tuple[int, int]) -> tuple[int, int]:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    for r, c in zip(rows, cols):
        a, b = find((0, r)), find((1, c))
        if a != b:
            parent[a] = b
    groups: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    for node in list(parent):
        side, index = node
        group = groups.setdefault(find(node), ([], []))
        group[side].append(index)
    return [(sorted(r), sorted(c)) for r, c in groups.values()]


def _exact(sim: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Most pairs first, then the highest total similarity: a search over every assignment."""
    options = [np.flatnonzero(row >= threshold).tolist() for row in sim]
    best: list = [(-1, 0.0), []]

    def search(r: int, used: frozenset, count: int, total: float, pairs: list) -> None:
        if r == len(options):
            if (count, total) > best[0]:
                best[0], best[1] = (count, total), list(pairs)
            return
        for c in options[r]:
            if c not in used:
                pairs.append((r, c))
                search(r + 1, used | {c}, count + 1, total + float(sim[r, c]), pairs)
                pairs.pop()
        search(r + 1, used, count, total, pairs)  # this row left unmatched

    search(0, frozenset(), 0, 0.0, [])
    return best[1]


def _greedy(sim: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    rows, cols = np.nonzero(sim >= threshold)
    order = np.argsort(-sim[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs
