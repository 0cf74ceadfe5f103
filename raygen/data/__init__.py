"""Datasets registered by name (``datasets``), loaded once as tensors on the trial's
device and batched by index slicing (``tensors``)."""
from raygen.data.tensors import AUTO, SPLITS, Data, TensorData, data_root, load_data  # noqa: F401
