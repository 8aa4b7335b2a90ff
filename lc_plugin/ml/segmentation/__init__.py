"""Deep-learning segmentation models (PyTorch), their training and ONNX export.

PyTorch is optional: only ``models.py`` imports it at module level, and that module is imported
only inside functions that first call ``require("torch")``, so the plugin loads without it. Classification of an exported model needs
only onnxruntime (see ``lc_plugin.ml.classify``).
"""

ARCHITECTURES = ("tfcn", "unet", "segnet", "resunet")
MULTIMODAL_ARCHITECTURES = ("tfcn", "unet", "resunet")  # a U-Net decoder to fuse a coarse second input into
MODEL_TYPE = "segmentation"
