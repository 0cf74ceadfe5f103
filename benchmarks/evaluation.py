"""Evaluation cost, measured: ``python -m benchmarks.evaluation [--device cuda]``.

Prints (1) the Fréchet distance on 2048-d statistics (full-rank and singular
covariances), pytorch-fid's (scipy ``sqrtm``) against raygen's (Cholesky or symmetric
root plus a symmetric eigenvalue solve, float64, on the device), with their relative
difference; (2) for each extractor, seconds per 1,000 scored images, cold (reference
features computed and written to the cache as well) and with the reference cached.
Without pytorch-fid's weights the Inception timing uses the same network with untrained
weights (same cost; no score from it is ever reported as a metric).

``--table3``: instead, whole evaluations at Ko et al. 2024's Table 3 protocol against one
training epoch of the same model, the previous implementation beside the current one
(``benchmarks.eval_protocol``).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from raygen.data import load_data
from raygen.metrics import classifier, inception, scores
from raygen.metrics.evaluate import extract, feature_scores, reference


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_frechet(device: torch.device, dim: int = 2048, n: int = 4000) -> str:
    from pytorch_fid.fid_score import calculate_frechet_distance

    g = torch.Generator().manual_seed(0)
    w = torch.randn(dim, dim, generator=g) / dim**0.5
    a = torch.relu(torch.randn(n, dim, generator=g) @ w)
    b = torch.relu(torch.randn(n, dim, generator=g) @ w + 0.1)
    (m1, s1), (m2, s2) = scores.gaussian_stats(a), scores.gaussian_stats(b)
    t0 = time.perf_counter()
    theirs = calculate_frechet_distance(m1.numpy(), s1.numpy(), m2.numpy(), s2.numpy())
    t_theirs = time.perf_counter() - t0
    m1, s1, m2, s2 = (t.to(device) for t in (m1, s1, m2, s2))
    scores.frechet_distance(m1, s1, m2, s2)  # warm-up (library load, CUDA context)
    _sync(device)
    t0 = time.perf_counter()
    ours = scores.frechet_distance(m1, s1, m2, s2)
    _sync(device)
    t_ours = time.perf_counter() - t0
    kind = "full-rank" if n > dim else "singular"
    line = (f"frechet distance {dim}-d, {n} samples ({kind} covariances): pytorch-fid (scipy sqrtm, cpu) "
            f"{t_theirs:.2f} s; raygen from statistics (float64, {device.type}) {t_ours:.3f} s, "
            f"{t_theirs / t_ours:.0f}x, relative difference {abs(ours - theirs) / abs(theirs):.1e}")
    if n < dim:  # what the metrics do with generated features: the (D, n) feature root
        a = a.to(device)
        _sync(device)
        t0 = time.perf_counter()
        ours = scores.feature_frechet(a, m2, s2)
        _sync(device)
        t_feat = time.perf_counter() - t0
        line += (f"; raygen from features {t_feat:.3f} s, {t_theirs / t_feat:.0f}x, relative difference "
                 f"{abs(ours - theirs) / abs(theirs):.1e}")
    return line


def bench_extractor(name: str, net, data, n: int, batch: int, device: torch.device) -> str:
    """Score ``n`` held-out images as if generated: cold (reference computed and cached
    first) and warm (reference from the cache)."""
    fake = data.to_unit(data.train.x[:n]).to(device)
    times = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in ("cold", "cached"):
            _sync(device)
            t0 = time.perf_counter()
            ref = reference(net, data, n, batch, Path(cache))
            feature_scores(*extract(net, fake, batch), ref)
            _sync(device)
            times.append(time.perf_counter() - t0)
    per = [1000 * t / n for t in times]
    return f"{name}: cold {per[0]:.2f} s / 1,000 images; reference cached {per[1]:.2f} s / 1,000 images (n={n})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.evaluation", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root", help="dataset folder (as for raygen.sweep)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--n-classifier", type=int, default=2000, help="images scored by the classifier")
    p.add_argument("--n-inception", type=int, default=0,
                   help="images scored by Inception (0: 1,000 on a GPU, 50 on a CPU)")
    p.add_argument("--skip-frechet", action="store_true")
    p.add_argument("--table3", action="store_true",
                   help="evaluation vs one training epoch at the Table 3 protocol, previous vs current")
    p.add_argument("--rounds", type=int, default=2, help="--table3: processes per implementation")
    args = p.parse_args(argv)
    if args.table3:
        from benchmarks.eval_protocol import table3

        return table3(args.threads or 1, args.rounds, args.data_root)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device: {device} (torch CPU threads: {torch.get_num_threads()})", flush=True)
    if not args.skip_frechet:
        for n in (4000, 1000):  # Cholesky path; eigendecomposition path (fewer samples than dimensions)
            print(bench_frechet(device, n=n), flush=True)
    data = load_data("mnist", split="auto", root=args.data_root, device=device)
    n_cls = min(args.n_classifier, len(data.eval))
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        clf, info = classifier.load("mnist", args.data_root, cache, device)
        print(f"classifier: trained in {time.perf_counter() - t0:.1f} s, accuracy {info['accuracy']:.4f}", flush=True)
    print(bench_extractor(f"classifier ({clf.describe})", clf, data, n_cls, 1000, device), flush=True)
    try:
        net, label = inception.load("", device), "inception (pytorch-fid weights)"
    except inception.WeightsMissing:
        net, label = inception.InceptionExtractor(None).to(device), "inception (weights absent: untrained, timing only)"
    n_inc = min(args.n_inception or (1000 if device.type == "cuda" else 50), len(data.eval))
    print(bench_extractor(label, net, data, n_inc, 200 if device.type == "cuda" else 50, device), flush=True)


if __name__ == "__main__":
    main()
