"""DINs baseline (docs/baselines.md, DINs): 3-D U-Net with a guide branch, ExpDT click guidance, ONNX inference.

- :mod:`.network`: the PyTorch network (channels-first ``(B, C, D, H, W)``).
- :mod:`.onnx_io`: ONNX export, ONNX Runtime session, export check.
- :mod:`.train`: training with simulated clicks; ``checkpoint.pt``, ``checkpoint.onnx``, ``meta.json`` per fold.
- :mod:`.adapter`: the ``dins`` evaluation adapter (interactive; each lesion from its own clicks).
"""
