"""models/mois_sam2"""
