"""models/sam2"""
