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


def _quotas(labels: torch.Tensor, sizes: torch.Tensor, sums: torch.Tensor, budget: int) -> list[int]:
    """Per cluster, the tokens it keeps when the clusters are at most the budget R (L1236-1260): shares of
    R - K by size - 1, rounded, within 0..size-1, the difference to R - K made up in one pass by norm sum
    (ascending to add, descending to remove); all-singleton clusters keep none (the official 0 / 0
    weights). The pass runs on Python integers (one read-back, not one per cluster)."""
    k = labels.size(0)
    size_list = sizes.tolist()
    total = sum(size_list)
    if total == k:
        return [0] * k
    weights = (sizes.float() - 1) / (total - k)
    max_quota = torch.clamp(sizes - 1, min=0)
    quotas = torch.minimum((weights * (budget - k)).round().to(torch.long), max_quota).tolist()
    caps = [max(s - 1, 0) for s in size_list]
    diff = (budget - k) - sum(quotas)
    if diff != 0:
        for i in torch.argsort(sums, descending=(diff < 0)).tolist():
            if diff > 0 and quotas[i] < caps[i]:
                quotas[i] += 1
                diff -= 1
            elif diff < 0 and quotas[i] > 0:
                quotas[i] -= 1
                diff += 1
            if diff == 0:
                break
    return [min(q, s - 1) for q, s in zip(quotas, size_list)]


def medians_of(groups: list[torch.Tensor]) -> torch.Tensor:
    """(G,) each group's median row ``sorted[len // 2]`` (L1226-1233) in one gather: the groups padded
    into one (G, M) matrix and sorted in it (the padding after every row)."""
    lengths = [len(g) for g in groups]
    pad = torch.nn.utils.rnn.pad_sequence(groups, batch_first=True, padding_value=2 ** 30)
    pad = torch.sort(pad, dim=1).values
    half = torch.tensor([n // 2 for n in lengths], device=pad.device)
    return pad.gather(1, half[:, None])[:, 0]


def token_filter_l2_norm_cluster(cluster_labels: torch.Tensor, l2_norm: torch.Tensor,
                                 budget: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """ViTCoP's clustered co-pruning to R = ``budget`` tokens (``vitcop_modeling_llama.py`` L1191-1288): (the
    visual rows kept as they are, the groups each merged into one token (ascending, but the one of the
    clusters over R), (G,) each group's median row), rows relative to the image; label -1 is a cluster as any
    other. More clusters than R: the R-1 of smallest norm sum are one token each, all others one more; else
    each cluster keeps its quota of smallest-norm tokens and merges the rest. The clusters' members come from
    one stable sort of the labels; each cluster's norm sum and its smallest norms stay its own reductions (the
    official order of summation and of ties)."""
    device = l2_norm.device
    labels, inverse, counts = torch.unique(cluster_labels, return_inverse=True, return_counts=True)
    k = labels.size(0)
    members = list(torch.split(torch.sort(inverse, stable=True).indices, counts.tolist()))
    sums = torch.stack([l2_norm[m].sum() for m in members])
    selected: list[torch.Tensor] = []
    groups: list[torch.Tensor] = []
    if k > budget:
        retained = torch.topk(sums, k=budget - 1, largest=False).indices.tolist()
        groups = [members[i] for i in retained]
        kept = set(retained)
        rest = torch.cat([members[i] for i in range(k) if i not in kept])
        if rest.numel() > 0:
            groups.append(rest)
    else:
        for m, keep_count in zip(members, _quotas(labels, counts, sums, budget)):
            if keep_count > 0:
                top = torch.topk(l2_norm[m], k=keep_count, largest=False).indices
                selected.append(m[top])
                keep_mask = torch.ones(len(m), dtype=torch.bool, device=device)
                keep_mask[top] = False  # the rest, ascending, without a read-back of its count
                m = m[torch.sort(keep_mask.to(torch.uint8), descending=True, stable=True).indices[
                    :len(m) - keep_count]]
            if m.numel() > 0:
                groups.append(m)
    picked = torch.cat(selected) if selected else torch.zeros(0, dtype=torch.long, device=device)
    medians = medians_of(groups) if groups else torch.zeros(0, dtype=torch.long, device=device)
    return picked, groups, medians
