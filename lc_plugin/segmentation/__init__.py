"""Deep-learning segmentation models (PyTorch), their training and ONNX export.

PyTorch is optional: nothing here imports it at module level, so the plugin loads without it;
the functions that need it call ``require("torch")``. Classification of an exported model needs
only onnxruntime (see ``lc_plugin.classify``).
"""

ARCHITECTURES = ("tfcn", "unet", "segnet", "resunet")
MODEL_TYPE = "segmentation"
