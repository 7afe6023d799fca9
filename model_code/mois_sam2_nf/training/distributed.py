"""torchrun environment -> process group. One process per device; gloo on CPU, nccl on CUDA.

Single-process runs (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) create no process group, so the same code runs with and
without torchrun.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process runs: ``rank`` of ``world_size``, ``local_rank`` on its node, and its ``device``."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes logs and checkpoints)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one member is active."""
        return self.world_size > 1


def resolve_device(requested: str, local_rank: int) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available, else CPU; ``"cuda"`` gets the local index."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(requested)


def init_distributed(requested_device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Read torchrun's ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` and join the process group when ``WORLD_SIZE > 1``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``values`` over ranks (identity in a single process); returns a new tensor on ``values.device``.

    The reduction runs on ``ctx.device`` (nccl needs CUDA tensors, gloo takes CPU ones).
    """
    out = values.detach().to(ctx.device, copy=True)
    if ctx.distributed:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.distributed:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group if this process joined one."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def replica_checksums(module: torch.nn.Module, ctx: DistContext) -> list[float]:
    """One float64 checksum of ``module``'s parameters per rank (``[own]`` in a single process).

    The checksum is ``Σ (p + p²)`` over all parameter elements in float64; DDP replicas that stay in sync give
    identical values on every rank.
    """
    with torch.no_grad():
        total = sum((p.detach().double().sum() + p.detach().double().pow(2).sum()) for p in module.parameters())
    local = torch.as_tensor(total, dtype=torch.float64, device=ctx.device).reshape(1)
    if not ctx.distributed:
        return [float(local.item())]
    gathered = [torch.zeros_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, local)
    return [float(g.item()) for g in gathered]
