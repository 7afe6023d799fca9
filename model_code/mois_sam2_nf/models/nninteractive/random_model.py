"""A small, randomly initialised model folder in nnInteractive's on-disk format (tests and smoke runs only).

``nnInteractiveInferenceSession.initialize_from_trained_model_folder(folder)`` reads:

- ``inference_info.json``: the session class the checkpoint needs and its runtime defaults (point radius,
  interaction decay, image padding mode); without a ``channel_mapping`` the session uses its default interaction
  channels (previous segmentation, box/lasso, points, scribbles: 7 channels);
- ``dataset.json``: input channels and labels (nnU-Net v2);
- ``plans.json``: nnU-Net v2 plans; the checkpoint's configuration gives the patch size and the network
  (``architecture.network_class_name`` + ``arch_kwargs``, built by nnU-Net from the plans);
- ``fold_<x>/checkpoint_final.pth``: ``{"trainer_name", "init_args": {"configuration"}, "network_weights"}``;
- ``LICENSE``: its first line is the license shown by the session.

The network is nnU-Net's ``PlainConvUNet`` with 1 image channel + 7 interaction channels in and 2 classes out, built by
nnU-Net's own builder (what the session does), so the weights load strictly. ``foreground_bias`` is added to the
foreground output's bias (a large value makes every predicted voxel foreground, which makes the predicted region
visible in tests).

``python -m mois_sam2_nf.models.nninteractive.random_model OUT`` writes one.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

CONFIGURATION = "3d_fullres"
TRAINER = "nnInteractiveTrainer_stub"
#: image channel + the session's default interaction channels
INPUT_CHANNELS = 1 + 7


def _plans(patch_size: Sequence[int], features: Sequence[int]) -> dict:
    """nnU-Net v2 plans with one configuration: a PlainConvUNet of ``len(features)`` stages."""
    stages = len(features)
    return {
        "dataset_name": "Dataset999_RandomNNInteractive",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": list(patch_size),
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "mois_sam2_nf random_model",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            "0": {"max": 1.0, "mean": 0.0, "median": 0.0, "min": -1.0, "percentile_00_5": -1.0,
                  "percentile_99_5": 1.0, "std": 1.0}},
        "configurations": {CONFIGURATION: {
            "data_identifier": "nnUNetPlans_3d_fullres",
            "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 1,
            "patch_size": list(patch_size),
            "median_image_size_in_voxels": list(patch_size),
            "spacing": [1.0, 1.0, 1.0],
            "normalization_schemes": ["ZScoreNormalization"],
            "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "batch_dice": False,
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {
                    "n_stages": stages,
                    "features_per_stage": list(features),
                    "conv_op": "torch.nn.modules.conv.Conv3d",
                    "kernel_sizes": [[3, 3, 3]] * stages,
                    "strides": [[1, 1, 1]] + [[2, 2, 2]] * (stages - 1),
                    "n_conv_per_stage": [1] * stages,
                    "n_conv_per_stage_decoder": [1] * (stages - 1),
                    "conv_bias": True,
                    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                    "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                    "dropout_op": None,
                    "dropout_op_kwargs": None,
                    "nonlin": "torch.nn.LeakyReLU",
                    "nonlin_kwargs": {"inplace": True},
                },
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
            },
        }},
    }


def write_random_model(out: str | os.PathLike[str], *, patch_size: Sequence[int] = (64, 64, 64),
                       features: Sequence[int] = (4, 8, 16), foreground_bias: float = 0.0, seed: int = 0) -> Path:
    """Write a random nnInteractive model folder to ``out`` (fold ``fold_0``); returns ``out``.

    ``patch_size`` is the network patch in array axis order; each entry must be divisible by
    ``2 ** (len(features) - 1)`` and larger than 48 (the session refines in patch-sized boxes with a 24-voxel margin).
    """
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    out = Path(out)
    (out / "fold_0").mkdir(parents=True, exist_ok=True)
    plans = _plans(patch_size, features)
    dataset = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "lesion": 1}, "numTraining": 0,
               "file_ending": ".nii.gz"}
    info = {"inference_class": "nnInteractiveInferenceSession", "point_radius": 4, "interaction_decay": 0.98,
            "pad_mode_image": "constant"}
    for name, content in (("plans.json", plans), ("dataset.json", dataset), ("inference_info.json", info)):
        (out / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    (out / "LICENSE").write_text("random weights (mois-sam2-nf tests; no license needed)\n", encoding="utf-8")
    torch.manual_seed(seed)
    manager = PlansManager(plans)
    network = nnInteractiveTrainer_stub.build_network_architecture(
        manager, manager.get_configuration(CONFIGURATION), INPUT_CHANNELS, 2, enable_deep_supervision=False)
    with torch.no_grad():
        network.decoder.seg_layers[-1].bias[1] += foreground_bias
    torch.save({"trainer_name": TRAINER, "init_args": {"configuration": CONFIGURATION},
                "network_weights": network.state_dict()}, out / "fold_0" / "checkpoint_final.pth")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``OUT [--foreground-bias B] [--seed S]``."""
    parser = argparse.ArgumentParser(description="write a small random nnInteractive model folder (tests only)")
    parser.add_argument("out")
    parser.add_argument("--foreground-bias", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_random_model(args.out, foreground_bias=args.foreground_bias, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
