"""Latent distributions fitted by maximum likelihood after training (Ko et al. 2024, Algorithm 1,
lines 14-18; Ghosh et al. 2020's ex-post density estimation for RAEs).

``LatentFit`` encodes the training set, fits a Gaussian mixture (scikit-learn's EM, full
covariances) or a single Gaussian (the closed-form ML estimate, which EM reaches in one
step), keeps the weights, means and Cholesky factors as buffers (their shapes are fixed by
the config, so they sit in the state dict as plain tensors and every checkpoint carries the
fit), and samples with torch's RNG (so ``torch.manual_seed`` makes samples repeatable).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from raygen.core.errors import RaygenError

# sampler name -> number of mixture components (None: the ``sampler_components`` setting)
KINDS: dict[str, int | None] = {"gaussian": 1, "gmm": None}


class LatentFit(nn.Module):
    def __init__(self, kind: str = "prior", components: int = 10, dim: int = 1, needs_fit: bool = False):
        super().__init__()
        if kind not in ("prior", *KINDS):
            raise RaygenError(f"sampler must be one of prior, {', '.join(KINDS)}; got {kind!r}")
        if kind == "prior" and needs_fit:
            raise RaygenError("this model has no prior to sample from: set sampler to gaussian or gmm")
        if int(components) < 1:
            raise RaygenError(f"sampler_components must be at least 1, got {components}")
        self.kind = kind
        k = 0 if kind == "prior" else KINDS[kind] or int(components)
        self.components = k
        self.register_buffer("is_fitted", torch.tensor(False))
        self.register_buffer("weights", torch.full((k,), 1.0 / max(k, 1)))  # (K,)
        self.register_buffer("means", torch.zeros(k, dim))  # (K, D)
        chol = torch.zeros(k, dim, dim)  # (K, D, D) lower Cholesky factors, identities until fitted
        chol.diagonal(dim1=-2, dim2=-1).fill_(1.0)  # not torch.eye: on the meta device (plan.split_all) its
        self.register_buffer("chol", chol)  # Python decomposition imports torch._dynamo (seconds)

    @property
    def active(self) -> bool:
        return self.kind != "prior"

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    @torch.no_grad()
    def fit_encoder(self, model: nn.Module, x: torch.Tensor, batch: int = 1000) -> dict[str, Any]:
        """Encode ``x`` with ``model.encode`` (eval mode) and fit; returns values to report."""
        was_training = model.training
        model.eval()
        z = torch.cat([model.encode(x[i:i + batch]) for i in range(0, len(x), batch)])  # (N, D)
        model.train(was_training)
        return self.fit(z)

    def fit(self, z: torch.Tensor) -> dict[str, Any]:
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        codes = z.detach().double().cpu().numpy()
        if len(codes) < 2 * self.components:
            raise RaygenError(f"sampler {self.kind!r} with {self.components} component(s) needs at least "
                              f"{2 * self.components} training codes, got {len(codes)}; lower sampler_components")
        if not np.isfinite(codes).all():
            raise RaygenError("the encoder produced non-finite latent codes; the sampler cannot be fitted")
        t0 = time.perf_counter()
        # The seed comes from torch's (seeded) RNG, so each trial's fit is repeatable.
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        # BLAS/OpenMP pools held to the trial's share (torch's threads, set from its CPUs):
        # unbounded, two trials' fits on 2 cores took ten times as long.
        with threadpool_limits(limits=torch.get_num_threads()):
            gmm = GaussianMixture(self.components, covariance_type="full", reg_covar=1e-6, max_iter=200,
                                  random_state=seed).fit(codes)
        for name, value in (("weights", gmm.weights_), ("means", gmm.means_),
                            ("chol", np.linalg.cholesky(gmm.covariances_))):
            getattr(self, name).copy_(torch.from_numpy(value))
        self.is_fitted.fill_(True)
        return {"sampler_fit_s": time.perf_counter() - t0, "sampler_loglik": float(gmm.score(codes)),
                "sampler_converged": bool(gmm.converged_)}

    def sample(self, n: int) -> torch.Tensor:
        """(n, D) draws: a component by weight, then mean + L @ eps."""
        comp = torch.multinomial(self.weights, n, replacement=True)  # (n,)
        eps = torch.randn(n, self.means.shape[1], 1, device=self.means.device)  # (n, D, 1)
        return self.means[comp] + (self.chol[comp] @ eps).squeeze(-1)  # (n, D)
