"""VIC (Vision Information Clustering): ViTCoP's density-peak clustering of visual tokens with a spatial
constraint (chaser682/ViTCoP @ 627f632, ``LLaVA/llava/model/multimodal_encoder/utils.py`` L27-170, ported
statement by statement; :mod:`litelvlm.methods.vitcop` runs it on CLIP's keys)."""

from __future__ import annotations

import torch


def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """(n, n) Euclidean distances ``sqrt(sum((x_i - x_j)^2) + 1e-8)`` by broadcasting (L152-170)."""
    dist_squared = torch.sum((x.unsqueeze(1) - x.unsqueeze(0)) ** 2, dim=2)
    return torch.sqrt(dist_squared + 1e-8)


def vic_labels(x: torch.Tensor, pos: torch.Tensor | None = None, *, dc: float = 8.0, percentage: float = 0.08,
               k: float = 0.6) -> torch.Tensor:
    """(n,) cluster labels of the rows of ``x`` (``VIC.fit``, L56-150): Gaussian density with cutoff ``dc``,
    each point's nearest denser point within spatial distance ``k`` of ``pos`` (normalised (y, x)), the
    ``max(1, int(percentage n))`` points of largest density x distance as centres (labels 0..), labels
    propagated down the nearest-denser chains; a point whose chain reaches no centre keeps -1."""
    n = x.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=x.device)
    device = x.device
    dist = torch.clamp(pairwise_distances(x), min=0.0)
    dist.fill_diagonal_(0)
    rho = torch.exp(-(dist / dc) ** 2).sum(dim=1)
    rho_expand = rho.unsqueeze(1).expand(n, n)
    rho_compare = ~torch.gt(rho_expand, rho_expand.t())  # [i, j]: j at least as dense as i
    rho_compare.fill_diagonal_(False)
    inf_mask = torch.full_like(dist, float("inf"))
    if pos is not None:
        dist_spatial = torch.clamp(pairwise_distances(pos), min=0.0)
        valid_mask = rho_compare & (dist_spatial <= k)
    else:
        valid_mask = rho_compare
    delta, nearest_higher = torch.min(torch.where(valid_mask, dist, inf_mask), dim=1)
    gamma = delta * rho
    gamma_sorted = torch.argsort(-gamma)
    centres = gamma_sorted[:max(1, int(percentage * n))].to(device)
    labels = torch.full((n,), -1, dtype=torch.long, device=device)
    labels[centres] = torch.arange(len(centres), device=device)
    unassigned = labels == -1
    while True:  # parallel propagation until nothing changes (L131-144)
        to_update = unassigned & (labels[nearest_higher] != -1)
        if not to_update.any():
            break
        labels[to_update] = labels[nearest_higher[to_update]]
        unassigned = labels == -1
    labels[centres] = torch.arange(len(centres), device=device)
    return labels


def _merged(indices: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(a merge group, its median position ``sorted[len // 2]``)."""
    return indices, int(torch.sort(indices).values[len(indices) // 2])


def _quotas(labels: torch.Tensor, sizes: torch.Tensor, sums: torch.Tensor, budget: int) -> list[int]:
    """Per cluster, the tokens it keeps when the clusters are at most the budget R (L1236-1260): shares of
    R - K by size - 1, rounded, within 0..size-1, the difference to R - K made up in one pass by norm sum
    (ascending to add, descending to remove); all-singleton clusters keep none (the official 0 / 0
    weights)."""
    k = labels.size(0)
    total = int(sizes.sum())
    if total == k:
        return [0] * k
    weights = (sizes.float() - 1) / (total - k)
    quotas = torch.minimum((weights * (budget - k)).round().to(torch.long), torch.clamp(sizes - 1, min=0))
    max_quota = torch.clamp(sizes - 1, min=0)
    diff = (budget - k) - quotas.sum().item()
    if diff != 0:
        for i in torch.argsort(sums, descending=(diff < 0)):
            if diff > 0 and quotas[i] < max_quota[i]:
                quotas[i] += 1
                diff -= 1
            elif diff < 0 and quotas[i] > 0:
                quotas[i] -= 1
                diff += 1
            if diff == 0:
                break
    return [min(int(q), int(s) - 1) for q, s in zip(quotas, sizes)]


def token_filter_l2_norm_cluster(cluster_labels: torch.Tensor, l2_norm: torch.Tensor,
                                 budget: int) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
    """ViTCoP's clustered co-pruning to R = ``budget`` tokens (``vitcop_modeling_llama.py`` L1191-1288): (the
    visual rows kept as they are, the groups each merged into one token, each group's median row), rows
    relative to the image; label -1 is a cluster as any other. More clusters than R: the R-1 of smallest norm
    sum are one token each, all others one more; else each cluster keeps its quota of smallest-norm tokens
    and merges the rest."""
    device = l2_norm.device
    labels = torch.unique(cluster_labels)
    k = labels.size(0)
    members = [(cluster_labels == cid).nonzero(as_tuple=False).squeeze(1) for cid in labels]
    sums = torch.stack([l2_norm[m].sum() for m in members])
    sizes = torch.tensor([len(m) for m in members], device=device)
    selected: list[torch.Tensor] = []
    groups: list[tuple[torch.Tensor, int]] = []
    if k > budget:
        retained = torch.topk(sums, k=budget - 1, largest=False).indices.tolist()
        groups = [_merged(members[i]) for i in retained]
        rest = torch.cat([members[i] for i in range(k) if i not in set(retained)])
        if rest.numel() > 0:
            groups.append(_merged(rest))
    else:
        for m, keep_count in zip(members, _quotas(labels, sizes, sums, budget)):
            if keep_count > 0:
                top = torch.topk(l2_norm[m], k=keep_count, largest=False).indices
                selected.append(m[top])
                keep_mask = torch.ones(len(m), dtype=torch.bool, device=device)
                keep_mask[top] = False
                m = m[keep_mask]
            if m.numel() > 0:
                groups.append(_merged(m))
    picked = torch.cat(selected) if selected else torch.zeros(0, dtype=torch.long, device=device)
    return picked, [g for g, _ in groups], [p for _, p in groups]
