"""End-of-trial evaluation. A metric family is a function ``(model, data, ev) -> dict``
registered with ``@metric(name, columns=...)``, declaring each column it fills (label,
direction, rank for "best": ``raygen.record.columns``), as compare_gan's ``EvalTask.metric_list``
does; ``of_model``: it also fills the model's own ``metric_columns``. ``evaluate`` runs every
family on the trial's device and records a family that could not run in ``metric_errors``
(its columns left empty) instead of failing the trial; a family that returns a key it did not
declare is a bug, and fails the trial. The families are in ``families.py``.

Generated samples, reconstructions of the held-out images and their features are
computed once per evaluation and shared by the families (``Eval``); reference features of
the held-out images are cached on disk per (dataset, split, extractor, count), reused by
every trial of every sweep (``diskcache``), and kept in memory, so the later trials of a
worker process read nothing from disk.

Sample counts: ``eval_samples`` generated samples (10,000 by default) against up to as
many held-out images; on a CPU the Inception metrics use at most ``inception_cpu_samples``
(its forward pass runs at a few images per second there). Every row records the counts,
extractor and reference split it used. Chaturvedula reports FID 18.24 / 28.56 and IS 2.76
with no extractor, sample count or reference set; Ko et al. 2024 (section 4.2) compute FID
"from 10 000 generated datapoints per test dataset". We follow Ko et al.: 10,000 samples
against the test split (its held-out part when training on it).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from raygen.core.diskcache import cached, default_cache_dir, entry
from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS, Registry
from raygen.metrics import health, scores
from raygen.models.base import batched
from raygen.record import keys
from raygen.record.columns import Column
from raygen.record.keys import Kind


@dataclass(frozen=True)
class Family:
    fn: Callable[..., dict]
    columns: tuple[Column, ...] = ()
    of_model: bool = False  # also fills the model's ``metric_columns`` (its ``extra_metrics``)

    def returns(self, model) -> set[str]:
        """The keys this family may return for ``model``."""
        own = {c.name for c in self.columns}
        return own | {c.name for c in type(model).metric_columns} if self.of_model else own


FAMILIES: Registry[Family] = Registry("metric family", builtins=("raygen.metrics.families",))


def metric(name: str, columns: tuple[Column, ...] = (), of_model: bool = False):
    def add(fn: Callable[..., dict]) -> Callable[..., dict]:
        FAMILIES.register(name)(Family(fn, columns, of_model))
        return fn
    return add


def declared_columns() -> list[Column]:
    """Every column the metric families and the registered models declare, each once."""
    out: dict[str, Column] = {}
    for _, fam in FAMILIES.items():
        out.update((c.name, c) for c in fam.columns)
    for _, cls in MODELS.items():
        out.update((c.name, c) for c in cls.metric_columns)
    out.update((c.name, c) for c in health.COLUMNS)  # measured by the trial at its end (engine)
    return list(out.values())


def declared_kinds() -> dict[str, str]:
    """name -> kind of every key the metric families and the models declare (their columns,
    each family's time, the models' own ``reports``); the fixed keys are ``keys.FIXED``."""
    out = {keys.family_time_key(name): Kind.TIME for name, _ in FAMILIES.items()}
    for _, cls in MODELS.items():
        out.update(cls.reports)
    out.update((c.name, c.kind) for c in declared_columns())
    return out


@torch.no_grad()
def generate(model, n: int, batch: int = 500) -> torch.Tensor:
    return torch.cat([model.sample(min(batch, n - i)) for i in range(0, n, batch)])


@dataclass
class Eval:
    """One evaluation's settings (from the trial's ``TrainConfig`` and ``Context``) and what
    its families share: generated samples, reconstructions, features."""

    n: int  # held-out images scored (reconstructions, reference features)
    samples: int = 10000  # generated samples
    inception_cpu_samples: int = 500  # cap for the Inception metrics on a CPU (0: no cap)
    fid_weights: str = ""
    inception_recon: bool = False  # also the Inception FID of reconstructions (fid_recon)
    holdout: int = 1000
    seed: int = 0
    data_root: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    _fake: torch.Tensor | None = field(default=None, repr=False)
    _recon: torch.Tensor | None = field(default=None, repr=False)
    _feats: dict = field(default_factory=dict, repr=False)

    def generated(self, model, data, k: int) -> torch.Tensor:
        """The first ``k`` generated samples in [0, 1] (the same ones for every family)."""
        if self._fake is None or len(self._fake) < k:
            torch.manual_seed(self.seed)  # the same samples whatever ran before (evaluate forks the RNG)
            self._fake = data.to_unit(generate(model, k)).clamp(0, 1)
        return self._fake[:k]

    def reconstructed(self, model, data, k: int) -> torch.Tensor:
        """Reconstructions of the first ``k`` held-out images, in the data's range."""
        if self._recon is None or len(self._recon) < k:
            self._recon = batched(model.reconstruct, data.eval.x[:max(k, self.n)])
        return self._recon[:k]

    def features(self, extractor, kind: str, x01: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``extract(extractor, x01, batch)``, once per (extractor, kind of images, count)."""
        key = (extractor.tag, kind, len(x01))
        if key not in self._feats:
            self._feats[key] = extract(extractor, x01, batch)
        return self._feats[key]


def is_image(data) -> bool:
    return len(data.shape) == 3


@torch.no_grad()
def extract(extractor, x01: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and class probabilities of images in [0, 1], in batches."""
    feats, probs = [], []
    for i in range(0, len(x01), batch):
        f, logits = extractor.extract(x01[i:i + batch])
        feats.append(f.float())
        probs.append(logits.float().softmax(1))
    return torch.cat(feats), torch.cat(probs)


_REFERENCES: dict[tuple[str, str], dict[str, torch.Tensor]] = {}  # per process, on the device
_MAX_REFERENCES = 4  # a trial uses one or two (classifier, Inception); a worker runs one dataset


def reference(extractor, data, n: int, batch: int, cache_dir: Path) -> dict[str, torch.Tensor]:
    """Features and Gaussian statistics of the first ``n`` held-out images, cached on disk
    per (dataset, split, extractor, n) and in memory per process."""
    path = entry(cache_dir, "reference", data.name, data.eval_split, extractor.tag, n)
    device = data.eval.x.device
    key = (str(path), str(device))
    if key not in _REFERENCES:
        def compute():
            feats, _ = extract(extractor, data.to_unit(data.eval.x[:n]), batch)
            mu, sigma = scores.gaussian_stats(feats)
            return {"feats": feats.cpu(), "mu": mu.cpu(), "sigma": sigma.cpu()}

        ref = cached(path, compute, keys=("feats", "mu", "sigma"))
        while len(_REFERENCES) >= _MAX_REFERENCES:
            _REFERENCES.pop(next(iter(_REFERENCES)))  # the oldest
        _REFERENCES[key] = {k: v.to(device) for k, v in ref.items()}
    return _REFERENCES[key]


def feature_scores(feats: torch.Tensor, probs: torch.Tensor, ref: dict) -> dict:
    """FID, IS, KID, precision and recall of generated images' features and class
    probabilities against reference features."""
    precision, recall = scores.precision_recall(ref["feats"], feats)
    return {"fid": scores.feature_frechet(feats, ref["mu"], ref["sigma"]),
            "is": scores.inception_score(probs), "kid": scores.kid(ref["feats"], feats),
            "precision": precision, "recall": recall}


def evaluate(model, data, ev: Eval, families: dict[str, Family] | None = None) -> dict:
    """Run every registered family (or ``families``, by name); failures become
    ``metric_errors`` text, not exceptions.
    Samples are drawn with ``ev.seed`` inside a forked RNG, so the scores are reproducible
    and evaluating never changes the training's random stream."""
    model.eval()
    t0 = time.perf_counter()
    out: dict = {}
    errors = []
    with torch.random.fork_rng():
        for name, fam in FAMILIES.items() if families is None else families.items():
            t_fam = time.perf_counter()
            try:
                got = fam.fn(model, data, ev)
            except Exception as exc:  # a metric that cannot run must not lose the trial
                got = dict.fromkeys(c.name for c in fam.columns)
                first = (str(exc).strip().splitlines() or [""])[0]
                errors.append(f"{name}: {type(exc).__name__}: {first}")
            undeclared = sorted(set(got) - fam.returns(model))
            if undeclared:
                raise RaygenError(f"metric family {name!r} returned undeclared key(s) {', '.join(undeclared)}; "
                                  f"declare them in its @metric(columns=...) (or the model's metric_columns)")
            out.update(got)
            out[keys.family_time_key(name)] = time.perf_counter() - t_fam  # each family's share of eval_time_s
    out[keys.METRIC_ERRORS] = "\n".join(errors) if errors else None  # one line per family
    out[keys.EVAL_SAMPLES] = ev.n
    out[keys.EVAL_SPLIT] = data.eval_split
    out[keys.TRAIN_SPLIT] = data.train_split
    out[keys.EVAL_TIME_S] = time.perf_counter() - t0
    model.train()
    return out
