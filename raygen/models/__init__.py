"""Model families, one file each; importing this package registers them all."""
from . import gan, savae, vae  # noqa: F401
from .base import AutoEncoderModel, GenerativeModel, ModelConfig  # noqa: F401
