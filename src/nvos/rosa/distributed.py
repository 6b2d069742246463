"""Multi-process training support: torchrun environment, collectives with gradient (VNA negatives).

``torchrun --nproc_per_node G ...`` starts G processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; :func:`init_from_env`
reads them and initialises the default process group: NCCL when each local process has its own
visible CUDA device (:func:`default_device`: ``cuda:<local rank>``), gloo on the CPU otherwise (a
one-GPU machine never sends rank 1 to a ``cuda:1`` that does not exist). A single process (no such
variables) gets :data:`SINGLE`, whose collectives are identities, so the training code is the same.

:meth:`Collective.all_gather` concatenates every process's tensor along dim 0 *with gradient*: the
backward pass sums each process's gradient of the gathered tensor and hands every process the part
that belongs to its own rows. Tensors may differ in every dimension between processes (local batch
size, padded frames, proposals, phrases): they are zero-padded to the largest size first (callers
gather their masks the same way, so padding is never counted).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = [
    "SINGLE",
    "Collective",
    "DistEnv",
    "default_device",
    "env_from_environ",
    "init_from_env",
    "shutdown",
]


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_from_environ(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The :class:`DistEnv` described by torchrun's variables (a single process without them)."""
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    try:
        rank = int(env["RANK"])
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
        return DistEnv(rank, world, int(env.get("LOCAL_RANK", rank)), local_world)
    except KeyError as exc:
        raise RuntimeError(
            f"WORLD_SIZE={world} is set but {exc.args[0]} is not (use torchrun)"
        ) from exc


def default_device(env: DistEnv) -> torch.device:
    """``cuda:<local rank>`` when CUDA is available and each of the node's processes has its own
    visible device, else the CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= max(env.local_world_size, 1):
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def init_from_env(device_type: str | None = None) -> DistEnv:
    """Initialise the default process group from torchrun's variables (no-op for one process).

    Args:
        device_type: ``cuda`` (NCCL) or ``cpu`` (gloo); None = the type of
            :func:`default_device`.
    """
    env = env_from_environ()
    if env.is_distributed and not dist.is_initialized():
        device_type = device_type or default_device(env).type
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
        logger.info("process group %s: rank %d of %d", backend, env.rank, env.world_size)
    return env


def shutdown() -> None:
    """Destroy the default process group if one was initialised."""
    if dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather of equally shaped tensors; backward = sum over processes, own slice kept."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # noqa: ANN001
        world = dist.get_world_size()
        ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


class Collective:
    """Collectives over the default process group, or identities for a single process."""

    def __init__(self, env: DistEnv) -> None:
        self.env = env

    @property
    def world_size(self) -> int:
        return self.env.world_size

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """Sum of ``tensor`` over processes (no gradient)."""
        if not self.env.is_distributed:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def all_gather_object(self, obj: object) -> list[object]:
        """Every process's ``obj`` (picklable), in rank order (``[obj]`` for one process)."""
        if not self.env.is_distributed:
            return [obj]
        out: list[object] = [None] * self.env.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_gather(self, tensor: Tensor) -> tuple[Tensor, int]:
        """Concatenate every process's ``tensor`` along dim 0, with gradient.

        Shapes may differ between processes: each dim ≥ 1 is zero-padded (False for bool) to the
        maximum over processes; rows keep their process order.

        Returns:
            (gathered tensor (sum of rows, *max dims), offset of this process's first row).
        """
        if not self.env.is_distributed:
            return tensor, 0
        world = self.env.world_size
        shape = torch.tensor(tensor.shape, dtype=torch.int64, device=tensor.device)
        shapes = [torch.empty_like(shape) for _ in range(world)]
        dist.all_gather(shapes, shape)
        sizes = torch.stack(shapes).cpu()
        max_shape = sizes.max(dim=0).values.tolist()
        is_bool = tensor.dtype == torch.bool
        padded = tensor.to(torch.uint8) if is_bool else tensor  # gloo gathers no bool
        pad: list[int] = []
        for dim in reversed(range(1, tensor.dim())):
            pad += [0, max_shape[dim] - tensor.shape[dim]]
        pad += [0, max_shape[0] - tensor.shape[0]]
        if any(pad):
            padded = torch.nn.functional.pad(padded, pad)
        if padded.requires_grad:
            gathered = _GatherWithGrad.apply(padded)
        else:
            parts = [torch.empty_like(padded) for _ in range(world)]
            dist.all_gather(parts, padded.contiguous())
            gathered = torch.cat(parts, dim=0)
        if is_bool:
            gathered = gathered.bool()
        rows = sizes[:, 0].tolist()
        chunks = [gathered[r * max_shape[0] : r * max_shape[0] + n] for r, n in enumerate(rows)]
        return torch.cat(chunks, dim=0), int(sum(rows[: self.env.rank]))


#: The collectives of a single process (identities).
SINGLE = Collective(DistEnv())
