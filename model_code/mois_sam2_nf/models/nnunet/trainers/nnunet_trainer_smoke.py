"""nnU-Net trainer for CPU smoke runs, found by nnU-Net through ``nnUNet_extTrainer`` (this folder).

Same network, plans, augmentation and losses as ``nnUNetTrainer``; only the schedule shrinks, and
the final sliding-window prediction of the validation cases is not run (minutes of CPU for a Dice nobody reads after
8 iterations).
"""

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_Smoke(nnUNetTrainer):  # noqa: N801 -- nnU-Net finds trainers by this class name
    """``nnUNetTrainer`` with 2 epochs x 4 training iterations and 2 validation iterations per epoch."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 4
        self.num_val_iterations_per_epoch = 2

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        """Not run for smoke models."""
