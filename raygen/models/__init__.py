"""Model families, one file each; importing this package registers them all."""
from . import gae, gan, mixture_vae, savae, vae, vae_variants, vaegan  # noqa: F401
from .base import AutoEncoderModel, GenerativeModel, ModelConfig  # noqa: F401
