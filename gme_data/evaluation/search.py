"""Exact inner-product top-k search with torch (CUDA when present), chunked over queries and corpus."""

from __future__ import annotations

import numpy as np
import torch


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def exact_search(queries: np.ndarray, corpus: np.ndarray, k: int, device: str | None = None,
                 query_chunk: int = 1024, corpus_chunk: int = 262_144) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` candidates per query by dot product.

    Returns ``(scores [nq, k'], indices [nq, k'])`` with ``k' = min(k, n_corpus)``, best first,
    float32 scores and int64 indices into ``corpus``. Memory stays bounded by the chunk sizes:
    corpus chunks are moved to the device once per query chunk and partial top-k lists merged.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    c = np.ascontiguousarray(corpus, dtype=np.float32)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"shape mismatch: queries {q.shape}, corpus {c.shape}")
    nq, nc = q.shape[0], c.shape[0]
    k = min(int(k), nc)
    if nq == 0 or k == 0:
        return np.zeros((nq, k), np.float32), np.zeros((nq, k), np.int64)
    dev = pick_device(device)
    out_s = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    single_chunk = nc <= corpus_chunk
    c_dev = torch.from_numpy(c).to(dev) if single_chunk else None
    with torch.inference_mode():
        for qs in range(0, nq, query_chunk):
            qt = torch.from_numpy(q[qs:qs + query_chunk]).to(dev)
            best_s: torch.Tensor | None = None
            best_i: torch.Tensor | None = None
            for cs in range(0, nc, corpus_chunk):
                ct = c_dev if single_chunk else torch.from_numpy(c[cs:cs + corpus_chunk]).to(dev)
                sims = qt @ ct.T
                kk = min(k, sims.shape[1])
                s, i = torch.topk(sims, kk, dim=1)
                i = i + cs
                if best_s is None:
                    best_s, best_i = s, i
                else:
                    s = torch.cat([best_s, s], dim=1)
                    i = torch.cat([best_i, i], dim=1)
                    best_s, pos = torch.topk(s, min(k, s.shape[1]), dim=1)
                    best_i = torch.gather(i, 1, pos)
            out_s[qs:qs + qt.shape[0]] = best_s.float().cpu().numpy()
            out_i[qs:qs + qt.shape[0]] = best_i.cpu().numpy()
    return out_s, out_i
