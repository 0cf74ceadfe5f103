"""Networks: dense/conv blocks (``blocks``), Zemouri 2020's residual networks (``resnet``),
and the architectures a model's ``arch`` setting names (``archs``)."""
from raygen.models.nets.archs import ARCHS, build_decoder, build_encoder  # noqa: F401
from raygen.models.nets.blocks import MLP, ConvDecoder, ConvEncoder, Unflatten, activation, numel  # noqa: F401
