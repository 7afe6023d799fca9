"""Names of the evaluation sets and where their scans live in the raw layout.

An evaluation set is ``ts<k>`` (the scans of ``imagesTs_<k>``, test set k) or ``val_<k>`` (the validation cases of
fold k, which live in ``imagesTr``). Run ids spell them without the underscore (``ts1``, ``val1``) because ``__``
separates a run id's fields. See docs/evaluation_protocol.md, Result files, and docs/synthetic_data.md, Raw data
layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mois_sam2_nf.data.layout import TRAIN_SET, label_dir_name
from mois_sam2_nf.errors import InputError

#: a set's name as a run id spells it
RUN_TOKEN = r"(?:ts|val)\d+"
_NAME = re.compile(r"^(?:(?P<test>ts|imagesTs_)|(?P<val>val_?))(?P<index>\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set.

    Attributes:
        kind: ``"test"`` (``ts<k>``) or ``"val"`` (``val_<k>``, fold k's validation cases).
        index: k.
    """

    kind: Literal["test", "val"]
    index: int

    @property
    def name(self) -> str:
        """``"ts<k>"`` or ``"val_<k>"`` (the ``data.test_set`` value and the CSV ``test_set`` column)."""
        return f"ts{self.index}" if self.kind == "test" else f"val_{self.index}"

    @property
    def run_token(self) -> str:
        """The name inside a run id: ``"ts<k>"`` or ``"val<k>"``."""
        return self.name.replace("_", "")

    @property
    def image_folder(self) -> str:
        """Raw-layout image folder of its scans: ``imagesTs_<k>`` or ``imagesTr``."""
        return f"imagesTs_{self.index}" if self.kind == "test" else TRAIN_SET

    @property
    def label_folder(self) -> str:
        """Raw-layout instance-label folder of its scans."""
        return label_dir_name(self.image_folder)


def parse_eval_set(value: object) -> EvalSet:
    """Parse a set name in any of the spellings found in configs, CSVs and run ids.

    Accepts ``1`` / ``"1"`` / ``"1.0"`` (test set 1, as spreadsheets write it), ``"ts1"``, ``"imagesTs_1"``,
    ``"val_1"`` and ``"val1"``; anything else raises :class:`InputError`.
    """
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    if text.isdigit():
        return EvalSet("test", int(text))
    match = _NAME.match(text)
    if match is None:
        raise InputError(f"test set {text!r}: expected ts<k> (imagesTs_<k>) or val_<k> (fold k validation)")
    return EvalSet("test" if match.group("test") else "val", int(match.group("index")))


def normalise_eval_set(value: object) -> str:
    """:attr:`EvalSet.name` of ``value`` when it parses (:func:`parse_eval_set`), else ``str(value)`` unchanged."""
    try:
        return parse_eval_set(value).name
    except InputError:
        return str(value).strip()
