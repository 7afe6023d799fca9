"""models/mois_sam2: MOIS-SAM2 model, exemplar bank, checkpoints, builder and configs."""

from mois_sam2_nf.models.mois_sam2.build import build_mois_sam2
from mois_sam2_nf.models.mois_sam2.checkpoint import load_checkpoint
from mois_sam2_nf.models.mois_sam2.exemplar_attention import ExemplarAttention
from mois_sam2_nf.models.mois_sam2.exemplar_bank import Exemplar, ExemplarBank, exemplar_key, select_exemplars
from mois_sam2_nf.models.mois_sam2.model import MOISSAM2Base
from mois_sam2_nf.models.sam2.checkpoint import read_state_dict, save_checkpoint

__all__ = ["Exemplar", "ExemplarAttention", "ExemplarBank", "MOISSAM2Base", "build_mois_sam2", "exemplar_key",
           "load_checkpoint", "read_state_dict", "save_checkpoint", "select_exemplars"]
