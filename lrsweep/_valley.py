"""The curve arithmetic of fastai's "valley" heuristic (``lrsweep.suggest_lr(method="valley")``):
a debiased moving average and the longest strictly decreasing subsequence. Pure numpy."""

from __future__ import annotations

import numpy as np


def ema(values: np.ndarray, beta: float) -> np.ndarray:
    """Debiased exponential moving average of ``values`` ``(n,)``, as fastai's ``Recorder`` smooths losses.

    ``a_k = beta a_{k-1} + (1 - beta) v_k`` from ``a_{-1} = 0``, and ``s_k = a_k / (1 - beta^(k+1))``.
    """
    if beta == 0.0:
        return values.copy()
    out = np.empty_like(values)
    avg = 0.0
    for k, v in enumerate(values):
        avg = beta * avg + (1.0 - beta) * v
        out[k] = avg / (1.0 - beta ** (k + 1))
    return out


def longest_descent(values: np.ndarray) -> tuple[int, int]:
    """``(start, end)`` of the longest valley in ``values``, shape ``(n,)`` with ``n >= 1``.

    ``d[i]``: the length of the longest strictly decreasing subsequence of ``values`` ending at
    ``i`` (fastai's ``lds``). ``end``: the first index with the largest ``d``. ``start``: the
    smallest index at which such a subsequence (of length ``d[end]``, ending at ``end``) can begin,
    found with ``f[j]``, the longest strictly decreasing subsequence from ``j`` to ``end``.
    ``O(n^2)`` time in ``n`` numpy passes: well under a second for ``n`` up to about ``10^4``.
    """
    n = values.size
    d = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        higher = values[:i] > values[i]
        if np.any(higher):
            d[i] = d[:i][higher].max() + 1
    end = int(np.argmax(d))
    f = np.zeros(n, dtype=np.int64)  # 0: no decreasing path from j to end
    f[end] = 1
    for j in range(end - 1, -1, -1):
        after = slice(j + 1, end + 1)
        reach = (values[after] < values[j]) & (f[after] > 0)
        if np.any(reach):
            f[j] = f[after][reach].max() + 1
    return int(np.argmax(f == d[end])), end
