"""The ``mois-sam2-nf`` console command: a dispatcher over sub-command modules.

Each sub-command lives in ``mois_sam2_nf.cli.<module>`` and exposes ``HELP: str``,
``add_arguments(parser: argparse.ArgumentParser) -> None`` and ``run(args: argparse.Namespace) -> int``.
Modules are imported only when their sub-command runs, so ``--help`` stays fast.
Output folders (``--out``, ``--work``) are checked before a command runs: one ``error:`` line and exit 1 for an
existing file or a path under a file.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from mois_sam2_nf.atomic import check_output_dir
from mois_sam2_nf.errors import InputError

#: sub-command name -> (module under mois_sam2_nf.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "generate the synthetic whole-body MRI cohort (raw NIfTI layout)"),
    "check-data": ("check_data", "list every problem in a raw-layout data folder"),
    "slice": ("slice", "export 3-D scans to per-case JPEG frames and palettised PNG instance masks"),
    "split": ("split", "write patient-level cross-validation folds"),
    "export-nnunet": ("export_nnunet", "export the raw layout to the nnU-Net v2 raw format"),
    "preview": ("preview", "coronal MIP previews with lesion outlines and a table of scans/lesions per set"),
    "evaluate": ("evaluate", "simulated-click evaluation of a model (Hydra overrides)"),
    "train": ("train", "train SAM2 / MOIS-SAM2 (Hydra overrides; runs under torchrun)"),
    "train-nnunet": ("train_nnunet", "train the nnU-Net v2 baseline with nnU-Net's own commands"),
    "train-sw-fastedit": ("train_sw_fastedit", "train the SW-FastEdit baseline (DynUNet + click guidance)"),
    "train-dins": ("train_dins", "train the DINs baseline and export it to ONNX"),
    "train-vista3d": ("train_vista3d", "fine-tune the VISTA3D baseline (point and automatic branches)"),
    "report": ("report", "analyse a results folder: report.md, tables, figures, statistics"),
    "segment": ("segment", "segment one scan from a clicks JSON file"),
}

#: sub-command options that name an output folder (every command that has one calls it ``--out`` or ``--work``)
OUTPUT_FOLDER_OPTIONS = ("out", "work")


def build_parser() -> argparse.ArgumentParser:
    """Parser with one sub-parser per entry of :data:`SUBCOMMANDS` (arguments added lazily)."""
    parser = argparse.ArgumentParser(
        prog="mois-sam2-nf",
        description="Multi-lesion interactive segmentation of neurofibromas in whole-body MRI.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _command_parser(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    module_name, help_text = SUBCOMMANDS[name]
    module = importlib.import_module(f"mois_sam2_nf.cli.{module_name}")
    parser = argparse.ArgumentParser(prog=f"mois-sam2-nf {name}", description=getattr(module, "HELP", help_text))
    module.add_arguments(parser)
    return parser, module


def check_output_folders(args: argparse.Namespace) -> None:
    """:class:`InputError` (one line) unless every output folder option given (:data:`OUTPUT_FOLDER_OPTIONS`) is, or
    can be created as, a writable folder; checked before a command does any work."""
    for name in OUTPUT_FOLDER_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            check_output_dir(value, f"--{name} folder")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 bad input, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser = build_parser()
        if not argv or argv[0] in ("-h", "--help"):
            parser.print_help()
            return 0 if argv else 2
        parser.error(f"unknown command {argv[0]!r}")
    parser, module = _command_parser(argv[0])
    args = parser.parse_args(argv[1:])
    try:
        check_output_folders(args)
        return int(module.run(args) or 0)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
