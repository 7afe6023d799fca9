"""``mois-sam2-nf segment``: segment one scan from a clicks JSON file (logic in segment_scan)."""

from __future__ import annotations

import argparse

from mois_sam2_nf.segment_scan import MAX_CLICKS_PER_LESION, MAX_LESIONS

HELP = """Segment one scan with an interactive model from a clicks JSON file.

Clicks file: {"lesions": [{"id": 1, "clicks": [[i, j, k, 1], [i, j, k, 0]]}, {"id": 2, "clicks": [[i, j, k, 1]]}]}
  i, j, k  integer voxel indices of the image array as nibabel loads it (0-based)
  last     1 = positive click (lesion), 0 = negative click (background)
  id       integer >= 1, unique; the lesion's value in lesions.nii.gz; each lesion needs a positive click

Writes to --out (image space): lesions.nii.gz (int32 lesion ids), propagated.nii.gz (uint8, models that propagate
to unprompted lesions, e.g. mois_sam2) and combined.nii.gz (uint8 union), with the image's affine, qform/sform and
their codes. The three files appear together or not at all. Bad input (clicks, image, checkpoint, --device, an --out
that cannot be a folder): one error line, exit 1, nothing written; clicks, --device and --out are checked before the
model is loaded.

Limits: at most --max-clicks-per-lesion clicks per lesion (default %(max_clicks)d) and --max-lesions lesions per file
(default %(max_lesions)d); a file beyond them is refused before the model runs.

Weights (sam2, mois_sam2): files written by this project's training or model_weights/export_sam2_model_weights.py
record their model config, image size and frame normalisation, so --checkpoint alone is enough. --config is needed
only for weights without that metadata (official SAM2.1, the released MOIS-SAM2 checkpoint); for weights with it, a
--config that names another config is refused.""" % {"max_clicks": MAX_CLICKS_PER_LESION, "max_lesions": MAX_LESIONS}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--image", required=True, help="scan (.nii or .nii.gz)")
    parser.add_argument("--clicks", required=True, help="clicks JSON file (format above)")
    parser.add_argument("--model", default="mois_sam2", help="registered segmenter name (default mois_sam2)")
    parser.add_argument("--checkpoint", default=None, help="model weights (passed to the model as checkpoint=)")
    parser.add_argument("--config", default=None,
                        help="model config name or YAML (passed as config=; default: the checkpoint's metadata)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (passed as device=)")
    parser.add_argument("--label", default=None, help="ground-truth label for the oracle segmenters (testing only)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--max-clicks-per-lesion", type=_positive_int, default=MAX_CLICKS_PER_LESION,
                        help=f"refuse a lesion with more clicks (default {MAX_CLICKS_PER_LESION})")
    parser.add_argument("--max-lesions", type=_positive_int, default=MAX_LESIONS,
                        help=f"refuse a clicks file with more lesions (default {MAX_LESIONS})")
    parser.add_argument("--speed", choices=("interactive", "exact"), default="interactive",
                        help="interactive (default): the shortcuts of models/interactive.yaml for sam2 / mois_sam2 "
                             "(docs/performance.md); exact: the path evaluate measures")


def run(args: argparse.Namespace) -> int:
    from mois_sam2_nf.segment_scan import segment_scan
    from mois_sam2_nf.models.interactive import apply_threads, interactive_settings

    settings = interactive_settings(args.model, args.speed)
    apply_threads(settings.threads)
    given = {"checkpoint": args.checkpoint, "config": args.config, "device": args.device}
    options = settings.options | {key: value for key, value in given.items() if value}
    outputs = segment_scan(args.image, args.clicks, args.model, args.out, label_path=args.label,
                           max_clicks_per_lesion=args.max_clicks_per_lesion, max_lesions=args.max_lesions, **options)
    for path in (outputs.lesions, outputs.propagated, outputs.combined):
        if path is not None:
            print(f"wrote {path}")
    print(f"segmented {outputs.n_lesions} lesion(s): {outputs.combined}")
    return 0
