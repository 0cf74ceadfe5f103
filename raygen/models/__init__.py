"""Model families, one file each; importing this package registers them all."""
from raygen.models import gae, gan, mixture_vae, savae, vae, vae_variants, vaegan  # noqa: F401
from raygen.models.base import AutoEncoderModel, GenerativeModel, ModelConfig  # noqa: F401
