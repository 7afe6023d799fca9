"""The training loop for SAM2 / MOIS-SAM2 (single process or one process per device under torchrun).

Outputs under ``trainer.out_dir`` (rank 0 writes; every file atomic except TensorBoard event files)::

    config.yaml                        the resolved config of the run
    checkpoints/checkpoint.pt          last finished epoch (model + optimiser + counters), used to resume
    checkpoints/checkpoint_epoch_E.pt  every ``keep_every`` epochs
    logs/train_log.csv                 every ``log_every`` iterations: epoch, iteration, step, lr, loss terms, s/it
    logs/val_log.csv                   per epoch: train loss mean, validation metrics (+ per-rank parameter
                                       checksums under DDP; the run stops if the replicas differ)
    logs/tensorboard/                  the same scalars (optional)

Each iteration: ``data.batch_size`` clips per process (one :class:`ClipBatch`, tracked as one SAM2 object batch) ->
forward under autocast (bf16 on CUDA) -> loss -> backward -> gradient-norm clipping -> AdamW step -> cosine learning
rate of the next step. The instance-loss normaliser (objects
per clip) is averaged over processes, as DDP averages gradients.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from mois_sam2_nf import hydra_compose
from mois_sam2_nf.atomic import write_text
from mois_sam2_nf.data.splits import read_fold
from mois_sam2_nf.training import components
from mois_sam2_nf.training.augment import AugmentSettings
from mois_sam2_nf.training.checkpointing import LAST, load_training_checkpoint, save_training_checkpoint
from mois_sam2_nf.training.dataset import ClipDataset, batch_clips
from mois_sam2_nf.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    init_distributed,
    replica_checksums,
    shutdown,
)
from mois_sam2_nf.training.logs import CsvTable, ScalarWriter
from mois_sam2_nf.training.objective import TrainingStep
from mois_sam2_nf.training.optim import apply_schedule, build_optimizer
from mois_sam2_nf.training.validation import validate

LOG = logging.getLogger(__name__)


def _datasets(cfg: DictConfig, image_size: int) -> tuple[ClipDataset, ClipDataset | None]:
    fold = read_fold(cfg.data.splits, int(cfg.data.fold))
    clip = components.clip_settings(cfg)
    seed = int(cfg.trainer.seed)
    train = ClipDataset(cfg.data.root, cfg.data.set, list(fold.train), image_size, clip,
                        components.augment_settings(cfg), seed)
    val = None
    if int(cfg.trainer.val_clips) > 0 and fold.val:
        val = ClipDataset(cfg.data.root, cfg.data.set, list(fold.val), image_size,
                          components.ClipSettings(clip.num_frames, clip.max_objects, 1), AugmentSettings(enabled=False),
                          seed)
    return train, val


def _loader(dataset: ClipDataset, ctx: DistContext, cfg: DictConfig) -> tuple[DataLoader, DistributedSampler[int]]:
    sampler: DistributedSampler[int] = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                                          shuffle=True, seed=int(cfg.trainer.seed), drop_last=True)
    workers = int(cfg.data.num_workers)
    loader = DataLoader(dataset, batch_size=int(cfg.data.batch_size), sampler=sampler, num_workers=workers,
                        collate_fn=batch_clips, drop_last=True,
                        persistent_workers=False, pin_memory=ctx.device.type == "cuda")
    return loader, sampler


def _iterations(cfg: DictConfig, loader: DataLoader) -> int:
    limit = cfg.trainer.iterations_per_epoch
    return len(loader) if limit is None else min(int(limit), len(loader))


def train(cfg: DictConfig) -> Path:
    """Run (or resume) the training described by ``cfg``; returns the path of the last checkpoint.

    Under torchrun every process calls this; DDP keeps the replicas identical.
    """
    ctx = init_distributed(str(cfg.trainer.device))
    try:
        return _train(cfg, ctx)
    finally:
        shutdown(ctx)


def _train(cfg: DictConfig, ctx: DistContext) -> Path:
    if cfg.trainer.cpu_threads is not None:
        torch.set_num_threads(int(cfg.trainer.cpu_threads))
    seed = int(cfg.trainer.seed)
    torch.manual_seed(seed + ctx.rank)
    out_dir = Path(cfg.trainer.out_dir)
    last = out_dir / "checkpoints" / LAST
    state = load_training_checkpoint(last) if bool(cfg.trainer.resume) and last.is_file() else None

    model = components.build_model(cfg, ctx.device, load_init_weights=state is None)
    if state is not None:
        model.load_state_dict(state.model)
    forward = components.build_forward(cfg, model)
    optimizer = build_optimizer(model, components.optim_settings(cfg), components.trunk_blocks(model),
                                components.NO_DECAY_MODULES)
    if state is not None:
        optimizer.load_state_dict(state.optimizer)
    runner: torch.nn.Module = TrainingStep(forward, components.objective_settings(cfg))
    if ctx.distributed:
        runner = DistributedDataParallel(runner, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                         find_unused_parameters=True)
    amp_dtype = components.autocast_dtype(str(cfg.trainer.amp), ctx.device)

    train_set, val_set = _datasets(cfg, int(model.image_size))
    loader, sampler = _loader(train_set, ctx, cfg)
    iterations = _iterations(cfg, loader)
    epochs = int(cfg.trainer.epochs)
    total_steps = max(1, epochs * iterations)
    start_epoch = state.epoch if state is not None else 0
    step = state.step if state is not None else 0
    config_dict = hydra_compose.config_dict(cfg, resolve=True)

    train_log = CsvTable(out_dir / "logs" / "train_log.csv", keep_before_epoch=start_epoch)
    val_log = CsvTable(out_dir / "logs" / "val_log.csv", keep_before_epoch=start_epoch)
    scalars = ScalarWriter(out_dir / "logs" / "tensorboard", bool(cfg.trainer.tensorboard) and ctx.is_main)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg))
        if state is not None:
            LOG.info("resuming from %s (epoch %d done, step %d)", last, state.epoch, state.step)
    log_every = max(1, int(cfg.trainer.log_every))
    metrics: dict[str, float] = dict(state.metrics) if state is not None else {}
    try:
        for epoch in range(start_epoch, epochs):
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch)
            forward.train()
            loss_sum, loss_count = 0.0, 0
            progress = tqdm(total=iterations, desc=f"epoch {epoch + 1}/{epochs}", unit="it", disable=not ctx.is_main)
            tick = time.perf_counter()
            for iteration, clip in enumerate(loader):
                if iteration >= iterations:
                    break
                apply_schedule(optimizer, step / total_steps)
                clip = clip.to(ctx.device)
                num_objects = all_reduce_sum(torch.tensor([float(clip.num_objects)]), ctx).item() / ctx.world_size
                rng = np.random.default_rng([seed, epoch, iteration, ctx.rank])
                with components.autocast(ctx.device, amp_dtype):
                    losses, extras = runner(clip, rng, max(num_objects, 1.0))
                if not torch.isfinite(losses["loss"]):
                    raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, iteration {iteration + 1} "
                                             f"(cases {', '.join(clip.cases)}, start frames {clip.starts})")
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.optim.grad_clip))
                optimizer.step()
                step += 1
                loss_value = float(losses["loss"].detach())
                loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
                progress.set_postfix(loss=f"{loss_value:.4f}")
                progress.update()
                now = time.perf_counter()
                seconds, tick = now - tick, now
                if ctx.is_main and (step % log_every == 0 or iteration + 1 == iterations):
                    row = {k: float(v.detach()) for k, v in losses.items()}
                    row.update(extras, grad_norm=float(grad_norm), lr=max(g["lr"] for g in optimizer.param_groups),
                               s_per_it=seconds)
                    train_log.append({"epoch": epoch, "iteration": iteration, "step": step, **row})
                    scalars.scalars(row, step, "train")
            progress.close()
            totals = all_reduce_sum(torch.tensor([loss_sum, float(loss_count)], dtype=torch.float64), ctx)
            metrics = {"train_loss": float(totals[0] / max(totals[1].item(), 1.0))}
            if val_set is not None:
                metrics.update(validate(forward, val_set, int(cfg.trainer.val_clips), ctx, amp_dtype, seed))
            if ctx.distributed:
                checksums = replica_checksums(model, ctx)
                metrics.update({f"param_checksum_rank{r}": c for r, c in enumerate(checksums)})
                if len(set(checksums)) > 1:
                    raise RuntimeError(
                        f"DDP replicas diverged after epoch {epoch + 1}: parameter checksums {checksums}"
                    )
            if ctx.is_main:
                val_log.append({"epoch": epoch, "step": step, **metrics})
                scalars.scalars(metrics, step, "epoch")
                train_log.flush()
                val_log.flush()
                save_training_checkpoint(last, model, optimizer, epoch=epoch + 1, step=step, config=config_dict,
                                         metrics=metrics)
                keep = int(cfg.trainer.keep_every)
                if keep > 0 and (epoch + 1) % keep == 0:
                    save_training_checkpoint(out_dir / "checkpoints" / f"checkpoint_epoch_{epoch + 1}.pt", model,
                                             optimizer, epoch=epoch + 1, step=step, config=config_dict,
                                             metrics=metrics)
                LOG.info("epoch %d/%d: %s", epoch + 1, epochs,
                         ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            barrier(ctx)
    finally:
        scalars.close()
    return last
