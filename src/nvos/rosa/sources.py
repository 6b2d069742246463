"""What training reads: batch sources of one process, and input statistics from them.

Training data is either a dataset of :class:`~nvos.rosa.batch.ClipItem` (``FeatureDataset``,
``SyntheticClips``), batched here with :func:`nvos.rosa.data.make_loader` (this process's share),
or a :class:`BatchSource` that yields this process's :class:`~nvos.rosa.batch.ClipBatch` of each
epoch. :func:`input_statistics` gives the mean and covariance of the frozen embeddings that
:meth:`nvos.rosa.model.RosaModel.set_input_norm` fits the input normalisation to.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import torch

from nvos.rosa.batch import ClipBatch, ClipItem
from nvos.rosa.distributed import SINGLE, Collective, DistEnv

__all__ = [
    "BatchSource",
    "as_source",
    "feature_dim",
    "input_statistics",
    "is_dataset",
    "iter_from",
    "validation_share",
]


class BatchSource(Protocol):
    """Batches of one process for an epoch (e.g. :class:`nvos.rosa.data.ClipLoader`)."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[ClipBatch]: ...


def is_dataset(data: Any) -> bool:
    """Whether ``data`` is a non-empty dataset of :class:`~nvos.rosa.batch.ClipItem`."""
    return (
        hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and len(data) > 0
        and (isinstance(data[0], ClipItem))
    )


def as_source(
    data: Any, batch_size: int, shuffle: bool, seed: int, workers: int, env: DistEnv, train: bool
) -> BatchSource:
    """A dataset of ClipItem → a ClipLoader of this process's share; a BatchSource as is."""
    if is_dataset(data):
        from nvos.rosa.data import make_loader

        return make_loader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            num_workers=workers,
            drop_last=train,
            rank=env.rank,
            world_size=env.world_size,
            pin_memory=torch.cuda.is_available(),
        )
    if hasattr(data, "set_epoch") and hasattr(data, "__iter__") and hasattr(data, "__len__"):
        return data
    raise TypeError(
        "training data must be a dataset of ClipItem (FeatureDataset, SyntheticClips) or a "
        f"batch source with set_epoch/__len__/__iter__, got {type(data).__name__}"
    )


class _BatchShard:
    """The items of whole batches ``rank, rank + world, ...`` of a dataset batched in order by
    ``batch_size`` (the last batch may be short; it is the last of the rank that has it)."""

    def __init__(self, data: Any, batch_size: int, rank: int, world: int) -> None:
        n = len(data)
        starts = range(rank * batch_size, n, world * batch_size)
        self.data = data
        self.indices = [i for s in starts for i in range(s, min(s + batch_size, n))]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> ClipItem:
        return self.data[self.indices[index]]

    def set_epoch(self, epoch: int) -> None:
        self.data.set_epoch(epoch)


def validation_share(
    data: Any, batch_size: int, seed: int, workers: int, env: DistEnv
) -> Iterator[ClipBatch]:
    """This process's share of the validation batches (epoch 0, in order): whole batches
    ``rank, rank + world, ...`` of the one-process batching, so that each batch, and its
    negatives, is the one a single process evaluates. A dataset is batched here (reading only
    this share); a :class:`BatchSource` is read whole and the other processes' batches skipped.
    """
    if is_dataset(data):
        shard = _BatchShard(data, batch_size, env.rank, env.world_size)
        if len(shard) == 0:
            return iter(())
        data = as_source(shard, batch_size, False, seed, workers, DistEnv(), train=False)
        env = DistEnv()
    source = as_source(data, batch_size, False, seed, workers, DistEnv(), train=False)
    source.set_epoch(0)
    return itertools.islice(iter(source), env.rank, None, env.world_size)


def feature_dim(data: Any, source: BatchSource) -> int:
    """D, the size of the frozen embeddings of ``data`` (read from ``source``'s first batch
    when the data does not say)."""
    if hasattr(data, "dim"):
        return int(data.dim)
    if is_dataset(data):
        return int(data[0].regions.shape[-1])
    source.set_epoch(0)
    return int(next(iter(source)).regions.shape[-1])


def iter_from(source: BatchSource, epoch: int, start: int) -> Iterator[ClipBatch]:
    """The epoch's batches from position ``start`` (sources with ``iter_from`` skip reading)."""
    source.set_epoch(epoch)
    if start and hasattr(source, "iter_from"):
        return iter(source.iter_from(start))  # type: ignore[attr-defined]
    return itertools.islice(iter(source), start, None)


def input_statistics(
    batches: Iterable[ClipBatch],
    collective: Collective = SINGLE,
    device: torch.device | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Mean (D,) and covariance (D, D), float64, of the real region, context-phrase and
    plain-phrase embeddings of ``batches`` (padding left out), for
    :meth:`nvos.rosa.model.RosaModel.set_input_norm`. Sums are added over ``collective``'s
    processes (on ``device``, e.g. the process's GPU for NCCL), so every process gets the
    statistics of all their batches.

    Raises ValueError when the batches hold no region or no phrase.
    """
    sums: dict[str, list[torch.Tensor]] = {}
    for batch in batches:
        region_mask = batch.region_mask & batch.frame_mask[:, :, None]
        rows = {
            "regions": batch.regions[region_mask],
            "context": batch.phrase_context[batch.phrase_mask],
            "plain": batch.phrase_plain[batch.phrase_mask],
        }
        for kind, x in rows.items():
            x = x.double().cpu()
            acc = sums.setdefault(kind, [torch.zeros(()), torch.zeros(()), torch.zeros(())])
            acc[0] = acc[0] + x.shape[0]
            acc[1] = acc[1] + x.sum(0)
            acc[2] = acc[2] + x.T @ x
    out = {}
    for kind in ("regions", "context", "plain"):
        if kind not in sums:
            raise ValueError("no batch to compute input statistics from")
        count, total, outer = (
            collective.all_reduce_sum(t.to(device or "cpu")).cpu() for t in sums[kind]
        )
        if float(count) == 0:
            raise ValueError(f"no {kind} embedding to compute input statistics from")
        mean = total / count
        out[kind] = (mean, outer / count - torch.outer(mean, mean))
    return out
