"""pytorch-fid's InceptionV3 as a feature extractor: pool3 features (2048-d) for FID and
precision/recall, and the same network's 1008-way logits for the Inception Score.

Images go in as tensors straight from the model (no PNG round trip) in [0, 1]; grayscale
is repeated to 3 channels; pytorch-fid's own ``InceptionV3`` resizes them (bilinear,
299x299, ``align_corners=False``) and scales them to [-1, 1], exactly as ``pytorch_fid``
does for image files.

Weights (never a number from random weights): the ``fid_weights`` setting, else
``$RAYGEN_FID_WEIGHTS``, else the torch hub cache, where pytorch-fid itself keeps them
(``<torch hub dir>/checkpoints/pt_inception-2015-12-05-6726825d.pth``), else a download
from pytorch-fid's release. Without any, ``WeightsMissing`` says where it looked and how
to fix it; the metrics record that and leave the Inception columns empty.
"""
from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse
from urllib.request import getproxies

import torch
from torch import nn

from raygen.core.errors import RaygenError

FILE = "pt_inception-2015-12-05-6726825d.pth"
ENV = "RAYGEN_FID_WEIGHTS"


class WeightsMissing(RaygenError):
    """No Inception weights file could be found or downloaded."""


def hub_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / FILE


# pytorch-fid's own (pytorch_fid.inception.FID_WEIGHTS_URL, checked by tests/metrics/test_inception.py):
# importing that module for it pulls in torchvision and torch._dynamo, seconds of a worker's start-up
# in every trial whose weights are missing
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FILE}"


def _url() -> str:
    return FID_WEIGHTS_URL


_DOWNLOAD_FAILED: dict[str, str] = {}  # per process: an offline worker tries once, not every trial


def _download(dst: Path, timeout: float = 10.0) -> str | None:
    """Fetch the weights into the hub cache (hash-checked by torch.hub); None on success,
    else why not. A quick connection probe first, so a firewalled machine fails in
    seconds instead of hanging in urlopen."""
    url = _url()
    if url in _DOWNLOAD_FAILED:
        return _DOWNLOAD_FAILED[url]
    try:
        if not getproxies().get("https"):  # behind a proxy only urllib knows the way
            socket.create_connection((urlparse(url).hostname, 443), timeout=timeout).close()
        dst.parent.mkdir(parents=True, exist_ok=True)
        print(f"raygen: downloading pytorch-fid's Inception weights (about 100 MB) to {dst}", flush=True)
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=FILE.split("-")[-1].split(".")[0],
                                       progress=False)
        return None
    except Exception as exc:  # offline, proxy, disk full, bad hash
        _DOWNLOAD_FAILED[url] = f"{type(exc).__name__}: {exc}"
        return _DOWNLOAD_FAILED[url]


def resolve_weights(setting: str = "", download: bool = True) -> Path:
    """The weights file to use, or ``WeightsMissing`` naming every place tried and the fix."""
    for value, name in ((setting, "the fid_weights setting"), (os.environ.get(ENV, ""), f"${ENV}")):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise WeightsMissing(f"Inception weights: {name} names {path}, which does not exist. Fix: "
                                     f"point it at pytorch-fid's {FILE} (from {_url()}), or unset it to use "
                                     f"the torch hub cache ({hub_path()}).")
            return path
    path = hub_path()
    if path.is_file():
        return path
    why = _download(path) if download else "download disabled"
    if why is None and path.is_file():
        return path
    raise WeightsMissing(f"Inception weights not found: fid_weights setting and ${ENV} unset, {path} absent, "
                         f"download from {_url()} failed ({why}). Fix: copy {FILE} into {path.parent}, or set "
                         f"${ENV} (or the fid_weights setting) to the file's path. Never scored with random "
                         f"weights: the Inception columns stay empty until then.")


def inception_network(state_dict: dict | None) -> tuple[nn.Module, nn.Linear]:
    """pytorch-fid's own ``InceptionV3`` (pool3 output, resize and scaling on) plus the fc
    layer of the same FID Inception (1008 logits, for the Inception Score).

    pytorch-fid loads its weights inside the constructor by URL; we hand it the state dict
    we resolved instead. ``state_dict=None`` builds the real architecture with untrained
    weights, for shape tests and timing only, never for metrics."""
    import pytorch_fid.inception as pfi
    from torchvision.models.inception import Inception3

    built = {}
    make = pfi.fid_inception_v3

    def keep_fc():
        built["net"] = make()
        return built["net"]

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(pfi, "fid_inception_v3", keep_fc))
        stack.enter_context(mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state_dict))
        if state_dict is None:
            stack.enter_context(mock.patch.object(Inception3, "load_state_dict", lambda self, *a, **k: None))
        try:
            blocks = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                     normalize_input=True)
        except RuntimeError as exc:  # a state dict of another network
            raise RaygenError(f"the Inception weights file is not pytorch-fid's {FILE}: {exc}") from None
    return blocks, built["net"].fc


class InceptionExtractor(nn.Module):
    tag = "pytorch_fid_inception_v3_pool3"  # names these features in reference-statistics caches
    describe = "pytorch-fid InceptionV3 pool3 2048-d (bilinear resize to 299x299)"

    def __init__(self, state_dict: dict | None):
        super().__init__()
        self.blocks, self.fc = inception_network(state_dict)
        self.eval()

    @torch.no_grad()
    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1 or 3, H, W) in [0, 1] -> pool3 features (B, 2048), logits (B, 1008)."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise RaygenError(f"Inception metrics need images shaped (B, 1 or 3, H, W); got {tuple(x.shape)}")
        x = x.clamp(0, 1).expand(-1, 3, -1, -1)  # grayscale -> 3 equal channels (a view, no copy)
        pool = self.blocks(x)[0].flatten(1)  # (B, 2048)
        return pool, self.fc(pool)  # (B, 1008)


_LOADED: dict[tuple, InceptionExtractor] = {}  # per process: loaded once, reused by every trial


def load(setting: str, device: torch.device | str) -> InceptionExtractor:
    path = resolve_weights(setting)
    key = (str(path), str(device))
    if key not in _LOADED:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise RaygenError(f"Inception weights file {path} could not be read ({type(exc).__name__}: {exc}). "
                              f"Fix: replace it with pytorch-fid's {FILE} from {_url()}.") from None
        _LOADED.clear()
        _LOADED[key] = InceptionExtractor(state).to(device)
    return _LOADED[key]
