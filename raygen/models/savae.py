"""Semi-Supervised Adversarial VAE (Zemouri 2020). Two phases inside one model.

Phase 1 (Algorithm 1, section 3.2): the Variational Encoder Classifier. Encoder and
classifier are trained together on L_kl + L_cat. It runs in ``on_train_start``, before
the trainer's first epoch, for ``phase1_epochs`` epochs over the training split, and is
trained once per (dataset and split, seed, latent size, phase-1 settings,
label_fraction): every beta/gamma trial sharing those loads it from a cache in the
sweep's storage (``phase1_cache_dir``). The trainer's ``epochs`` are phase-2 epochs.

Phase 2 (Algorithm 2, section 3.3): encoder and classifier frozen; the decoder trained
on L_rec + beta L_adv + gamma L_latent (eq. 8), after ``n_dis`` discriminator updates
per decoder step (each one a least-squares step on real images, target +1, then one on
generated images, target -1).

Choices where the paper is silent (each also noted where it is made):
- Optimisers: none given; Adam, 1e-3 in phase 1, 1e-3 with beta1 = 0.5 (the usual GAN
  setting) for decoder and discriminator. n_dis: none given, only "more discriminator
  cycles than generator cycles" as in the Wasserstein GAN: WGAN's n_critic = 5, a config value.
- Reductions: eq. 11's L_latent is a squared norm, summed over the classes (and averaged
  over the batch, the expectation); eq. 10's L_adv is over one score per image. Eq. 9's
  L_rec is written E[||F_i - F^_i||^2] without saying what the expectation runs over: we
  average over the feature elements (``losses.feature_consistency`` says why).
- Algorithm 2 draws a fresh mini-batch for every discriminator update (one of real images,
  another to generate from) and for the decoder's: the decoder trains on the trainer's batch,
  the discriminator's batches come from the model's own seeded batch stream, kept in its
  state, so checkpoints resume exactly.
- Z is the sampling layer's output in training (section 4.2: "the output of the encoder
  is given by the sampling layer"); ``encode`` / ``reconstruct`` use the mean.
- ``label_fraction`` < 1: a fixed, seeded random subset of the training images keeps its
  label; L_cat averages over the labelled images of each batch, the rest add only L_kl.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from raygen.core.diskcache import load_or_build, shared_cache_dir
from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS
from raygen.core.settings import setting
from raygen.core.values import plain
from raygen.data import TensorData
from raygen.models import losses
from raygen.models.base import AutoEncoderModel, Context, ModelConfig, adam, batched, step
from raygen.models.figures import class_region_points, image_grid, latent_scatter
from raygen.models.nets.resnet import Discriminator, ResClassifier, ResNetDecoder, ResNetEncoder
from raygen.models.vae import reparameterize
from raygen.record.columns import HIGHER, Column
from raygen.record.keys import Kind

BATCH_STREAM = 7919  # the discriminator's batch stream: seeded apart from the trainer's (seed)
PHASE1_VERSION = 1  # bump when phase 1's code changes: old cache entries are then ignored


@dataclass
class SAVAEConfig(ModelConfig):
    latent_dim: int = 100  # section 4.3.1 compares K_z = 2 and K_z = 100
    lr: float = 1e-3  # phase 2: decoder and discriminator (Adam; the paper gives no optimiser)
    adam_beta1: float = setting(0.5, ge=0, le=0.999)  # Adam's beta1 must be in [0, 1)
    # Widths (Figure 6's are not in the text; ours, kept small for CPUs). Encoder: 3 levels
    # of 2 conv layers (6 convs, 2 max-pools), then 3 dense LeakyReLU layers (section 4.2).
    channels: tuple[int, ...] = setting((16, 32, 64), ge=1, le=4096)
    hidden: tuple[int, ...] = setting((512, 256, 128), ge=1, le=1_000_000)
    # classifier: 3 dense layers of this width, each + a residual block
    cls_width: int = setting(128, ge=1, le=1_000_000)
    dis_channels: tuple[int, ...] = setting((16, 32, 32), ge=1, le=4096)  # discriminator: 3 convs, 2 max-pools
    # then 4 dense layers and one linear unit
    dis_hidden: tuple[int, ...] = setting((256, 128, 64, 32), ge=1, le=1_000_000)
    alpha: tuple[float, ...] = setting((1.0, 0.1, 0.01), ge=0)  # section 4.3.2: weights of the 3 feature layers
    beta: float = setting(0.01, ge=0)  # weight of L_adv (eq. 8)
    gamma: float = setting(0.1, ge=0)  # weight of L_latent (eq. 8)
    # Discriminator updates per decoder update (Algorithm 2). The paper raises them "as in the
    # Wasserstein GAN" without a number; WGAN's n_critic is 5 (Arjovsky et al. 2017, Algorithm 1).
    n_dis: int = setting(5, ge=1, le=1000)
    phase1_epochs: int = setting(10, ge=1, le=1_000_000)  # Algorithm 1 runs "until convergence"; a fixed budget here
    phase1_lr: float = setting(1e-3, gt=0, le=10)
    phase1_batch_size: int = setting(128, ge=1, le=1_000_000)
    phase1_max_batches: int = setting(0, ge=0)  # batches per phase-1 epoch (0: all); smoke runs use a few
    label_fraction: float = setting(1.0, gt=0, le=1)  # fraction of training images whose label phase 1 sees
    # L_kl summed over the latent dimensions, or averaged over them (the default): see KL.
    kl_reduction: str = "mean"


# Eq. 6 does not say how L_kl is reduced. Summed over dimensions (the ELBO's form, in nats
# like L_cat), L_kl + L_cat >= H(Y) = ln 10 for every encoder, since L_cat >= H(Y) - I(Z;Y)
# and L_kl >= I(Z;X) >= I(Z;Y): the collapsed encoder (Z independent of X, L = ln 10) is
# already a minimum, and in our runs on MNIST phase 1 goes there (K_z = 100: the classifier
# stays at chance after 150 steps; it learns within 100 steps with the mean). The mean over
# dimensions weighs L_kl by 1/K_z, which breaks the
# tie in favour of a class-structured latent space, the paper's Figure 7.
KL = {"mean": lambda mu, logvar: losses.kl_normal(mu, logvar) / mu.shape[1], "sum": losses.kl_normal}


# Every setting that changes phase 1's result: part of its cache key (with the data and seed).
PHASE1_KEYS = ("latent_dim", "channels", "hidden", "cls_width", "output", "phase1_epochs", "phase1_lr",
               "phase1_batch_size", "phase1_max_batches", "label_fraction", "kl_reduction")


@MODELS.register("savae")
class SAVAE(AutoEncoderModel):
    """Encoder, classifier (phase 1); decoder, discriminator (phase 2): see the module doc."""

    Config = SAVAEConfig
    stack_refusal = "trains in two phases (a pretraining in on_train_start, then two optimizers)"
    metric_columns = (Column("latent_class_consistency", "latent class consistency", HIGHER),
                      Column("recon_class_acc", "recon. class acc.", HIGHER),
                      Column("classifier_acc_phase1", "phase-1 classifier acc.", HIGHER, compare=False))
    # phase 2's losses (phase 1 trains inside on_train_start), and how phase 1 went
    reports = {**dict.fromkeys(("rec_loss", "adv_loss", "latent_loss", "dis_loss"), Kind.LOSS),
               "phase1_cached": Kind.BOOKKEEPING, "phase1_key": Kind.BOOKKEEPING,
               "phase1_time_s": Kind.TIME, "phase1_train_time_s": Kind.TIME}

    def __init__(self, cfg: SAVAEConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        _check(cfg, self.shape)
        self.phase = 1
        self.phase1_info: dict = {}  # how phase 1 went (reported with every result that ends a trial)
        self.train_images: torch.Tensor | None = None  # set by ``attach``
        self.batch_rng: torch.Generator | None = None
        # Phase-1 networks first: their initial weights depend only on the seed and their settings.
        self.encoder = ResNetEncoder(shape, 2 * cfg.latent_dim, cfg.channels, cfg.hidden)  # -> (mean, logvar)
        self.classifier = ResClassifier(cfg.latent_dim, num_classes, cfg.cls_width)
        # Section 4.2: "almost the inverse encoder": 3 dense layers (latent -> 128 -> 256 ->
        # the top feature map; the encoder's widest dense layer has no mirror, so there are 3),
        # then 7 convs from the narrowest map back up.
        self.decoder = ResNetDecoder(cfg.latent_dim, shape, dense=tuple(reversed(cfg.hidden[1:])),
                                     channels=tuple(reversed(cfg.channels)))
        self.discriminator = Discriminator(shape, cfg.dis_channels, cfg.dis_hidden)

    # --- the networks ------------------------------------------------------------------
    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, latent) each
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_dist(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_activation(self.decoder(z))  # (B, C, H, W)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.classifier(z), dim=1)  # (B, classes)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.cfg.latent_dim, device=self.device))

    # --- phases ------------------------------------------------------------------------
    def set_phase(self, phase: int) -> None:
        """Phase 2 freezes encoder and classifier (no gradients, batch norm in eval mode)."""
        self.phase = phase
        for net in (self.encoder, self.classifier):
            net.requires_grad_(phase == 1)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.phase == 2:
            self.encoder.eval()
            self.classifier.eval()
        return self

    def get_extra_state(self) -> dict:
        out = {"phase": self.phase, "phase1": dict(self.phase1_info)}
        if self.batch_rng is not None:
            out["batch_rng"] = self.batch_rng.get_state()
        return out

    def set_extra_state(self, state: dict) -> None:
        self.phase1_info = dict(state["phase1"])
        self.set_phase(int(state["phase"]))
        if self.batch_rng is not None and state.get("batch_rng") is not None:
            self.batch_rng.set_state(state["batch_rng"])

    def attach(self, data, ctx: Context) -> None:
        """Algorithm 2's discriminator draws its own mini-batches of the training images."""
        self.train_images = data.train.x
        self.batch_rng = torch.Generator().manual_seed(ctx.seed + BATCH_STREAM)

    def fresh_batch(self, like: torch.Tensor) -> torch.Tensor:
        """A random mini-batch of training images the size of ``like`` (``like`` itself when
        the model is used outside a trial)."""
        if self.train_images is None:
            return like
        idx = torch.randperm(len(self.train_images), generator=self.batch_rng)[:len(like)]
        return self.train_images[idx.to(self.train_images.device)]

    def configure_optimizers(self):
        c, betas = self.cfg, (self.cfg.adam_beta1, 0.999)
        return {"vec": adam([*self.encoder.parameters(), *self.classifier.parameters()], lr=c.phase1_lr),
                "dec": adam(self.decoder.parameters(), lr=c.lr, betas=betas),
                "dis": adam(self.discriminator.parameters(), lr=c.lr, betas=betas)}

    def train_step(self, x, y, opts):
        return {1: self.vec_step, 2: self.decoder_step}[self.phase](x, y, opts)

    # --- phase 1: the Variational Encoder Classifier (Algorithm 1) ------------------------
    def vec_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_VEC = L_kl + L_cat (eq. 6); labels < 0 are unlabelled (no L_cat)."""
        mu, logvar = self.encode_dist(x)
        kl = KL[self.cfg.kl_reduction](mu, logvar)
        cat = losses.masked_cross_entropy(self.classifier(reparameterize(mu, logvar)), y)
        return {"loss": kl + cat, "kl_loss": kl, "cat_loss": cat}

    def vec_step(self, x, y, opts):
        out = self.vec_loss(x, y)
        step(opts["vec"], out["loss"])
        return {k: v.detach() for k, v in out.items()}

    def on_train_start(self, data, ctx: Context) -> dict:
        """Phase 1, trained here or loaded from the cache another trial wrote; then phase 2."""
        t0 = time.perf_counter()
        spec = self.phase1_spec(data, ctx.seed)
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        path = shared_cache_dir(ctx.sweep_dir, ctx.cache_dir) / "savae_phase1" / f"{key}.pt"
        state, cached = load_or_build(path, lambda: {**self.train_phase1(data, ctx.seed), "spec": spec},
                                      keys=("encoder", "classifier", "classifier_acc", "train_time_s", "spec"))
        self.encoder.load_state_dict(state["encoder"])
        self.classifier.load_state_dict(state["classifier"])
        self.set_phase(2)
        self.phase1_info = {"phase1_cached": cached, "phase1_time_s": time.perf_counter() - t0,
                            "phase1_train_time_s": state["train_time_s"],
                            "classifier_acc_phase1": state["classifier_acc"], "phase1_key": key}
        print(f"raygen: savae phase 1 {'loaded from' if cached else 'trained into'} {path} "
              f"(classifier accuracy {state['classifier_acc']:.3f})", flush=True)
        return dict(self.phase1_info)

    def on_train_end(self, data) -> dict:
        return dict(self.phase1_info)  # so the trial's last result (its results.parquet row) has them

    def phase1_spec(self, data, seed: int) -> dict:
        """Everything phase 1's result depends on: the data, the seed, the phase-1 settings."""
        x, y = data.train.x, data.train.y
        return {"version": PHASE1_VERSION, "dataset": data.name, "train_split": data.train_split,
                "eval_split": data.eval_split, "n": len(x), "shape": list(x.shape[1:]),
                "checksum": round(float(x.double().sum()), 2), "label_sum": int(y.sum()),
                "num_classes": self.num_classes, "seed": seed,
                **{k: plain(getattr(self.cfg, k)) for k in PHASE1_KEYS}}

    def train_phase1(self, data, seed: int) -> dict:
        """Algorithm 1 for ``phase1_epochs`` epochs. Runs on forked RNGs (seeded by ``seed``)
        so that the trial continues from the same RNG state whether it trained or loaded."""
        c, t0 = self.cfg, time.perf_counter()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            train = TensorData(data.train.x, semi_supervised_labels(data.train.y, c.label_fraction, seed))
            opt = adam([*self.encoder.parameters(), *self.classifier.parameters()], lr=c.phase1_lr)
            gen = torch.Generator().manual_seed(seed)
            self.set_phase(1)
            self.train()
            for epoch in range(1, c.phase1_epochs + 1):
                outs = [self.vec_step(x, y, {"vec": opt})
                        for x, y in train.batches(c.phase1_batch_size, gen, c.phase1_max_batches or None)]
                mean = {k: float(torch.stack([o[k] for o in outs]).mean()) for k in outs[0]}
                print(f"raygen: savae phase 1 epoch {epoch}/{c.phase1_epochs}: "
                      + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()), flush=True)
            self.eval()
            acc = self.class_metrics(data.eval.x, data.eval.y)["classifier_acc"]
            self.train()
        cpu = lambda net: {k: v.detach().cpu() for k, v in net.state_dict().items()}
        return {"encoder": cpu(self.encoder), "classifier": cpu(self.classifier), "classifier_acc": acc,
                "train_time_s": time.perf_counter() - t0}

    # --- phase 2: the decoder (Algorithm 2) ------------------------------------------------
    def decoder_step(self, x, y, opts):
        c = self.cfg
        with torch.no_grad():  # the frozen encoder: Z's distribution and X's features
            mu, logvar = self.encode_dist(x)  # (B, latent) each
            feats = self.encoder.features(x, len(c.alpha))  # F_i = phi_i(X), (B, ch, h, w) each
        for _ in range(c.n_dis):  # 1. the discriminator: real -> +1, then generated -> -1, fresh batches
            d_real = losses.least_squares(self.discriminator(self.fresh_batch(x)), 1.0)
            step(opts["dis"], d_real)
            with torch.no_grad():
                x_gen = self.decode(reparameterize(*self.encode_dist(self.fresh_batch(x))))
            d_gen = losses.least_squares(self.discriminator(x_gen), -1.0)
            step(opts["dis"], d_gen)
        z = reparameterize(mu, logvar)  # 2. the decoder
        x_hat = self.decode(z)  # (B, C, H, W)
        out_hat, feats_hat = self.encoder.forward_features(x_hat, len(c.alpha))
        z_hat = reparameterize(*out_hat.chunk(2, dim=1))
        rec = losses.feature_consistency(feats, feats_hat, c.alpha)  # eq. 9
        with torch.no_grad():
            score_real = self.discriminator(x)
        adv = losses.paired_squares(score_real, self.discriminator(x_hat))  # eq. 10
        lat = losses.squared_norm(self.classify(z), self.classify(z_hat))  # eq. 11: summed over classes
        loss = rec + c.beta * adv + c.gamma * lat  # eq. 8
        step(opts["dec"], loss)
        out = {"loss": loss, "rec_loss": rec, "adv_loss": adv, "latent_loss": lat, "dis_loss": d_real + d_gen}
        return {k: v.detach() for k, v in out.items()}

    # --- measurements and pictures -------------------------------------------------------
    @torch.no_grad()
    def class_metrics(self, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> dict[str, float]:
        """Class(Z) against the labels (classifier accuracy), against Class(Z^) with
        Z^ = Enc(Dec(Z)) (latent class consistency, what L_latent asks for), and Class(Z^)
        against the labels (are reconstructions still of the right class). Z: the means."""
        counts = torch.zeros(3, device=x.device)
        for i in range(0, len(x), batch):
            z = self.encode(x[i:i + batch])
            pred = self.classifier(z).argmax(1)
            pred_hat = self.classifier(self.encode(self.decode(z))).argmax(1)
            yb = y[i:i + batch]
            counts += torch.stack([(pred == yb).sum(), (pred == pred_hat).sum(), (pred_hat == yb).sum()])
        acc, consistency, recon_acc = (counts / max(len(x), 1)).tolist()
        return {"classifier_acc": acc, "latent_class_consistency": consistency, "recon_class_acc": recon_acc}

    def extra_metrics(self, data, n: int) -> dict:
        out = self.class_metrics(data.eval.x[:n], data.eval.y[:n])
        return {k: out[k] for k in ("latent_class_consistency", "recon_class_acc")}

    @torch.no_grad()
    def artifacts(self, data, out_dir: Path) -> dict[str, str]:
        """The first 40 eval images and their reconstructions (2 rows of 20, the same images
        in every trial: Figure 9's layout, changed classes framed in red); for K_z = 2 the latent scatter (Figure 7) and
        images decoded from each class's region (Figure 8)."""
        x = data.eval.x[:40]
        z = self.encode(x)
        x_hat = self.decode(z)
        changed = self.classifier(z).argmax(1) != self.classifier(self.encode(x_hat)).argmax(1)
        image_grid(data.to_unit(x), out_dir / "fixed_inputs.png", nrow=20)
        # Red frame: Class(Z^) differs from Class(Z), the reconstruction changed class (what
        # L_latent penalises; Figure 9 frames these in red, judged by eye).
        image_grid(data.to_unit(x_hat), out_dir / "recon_fixed.png", nrow=20, frames=changed)
        out = {"fixed_inputs_png": "fixed_inputs.png", "recon_fixed_png": "recon_fixed.png"}
        if self.cfg.latent_dim == 2:
            z = batched(self.encode, data.eval.x).cpu()  # (N, 2)
            y = data.eval.y.cpu()
            latent_scatter(z, y, out_dir / "latent_scatter.png", f"{data.name}: 2-D latent space (eval images)")
            image_grid(data.to_unit(self.decode(class_region_points(z, y).to(self.device))),
                       out_dir / "class_decodes.png", nrow=10)
            out.update(latent_scatter_png="latent_scatter.png", class_decodes_png="class_decodes.png")
        return out


# --- helpers -----------------------------------------------------------------------------


def _check(cfg: SAVAEConfig, shape: tuple[int, ...]) -> None:
    where = "model 'savae'"
    if len(shape) != 3:
        raise RaygenError(f"{where} needs image data (C, H, W); this dataset's items have shape {shape}")
    problems = {
        f"label_fraction must be in (0, 1], got {cfg.label_fraction}": not 0 < cfg.label_fraction <= 1,
        f"n_dis must be >= 1, got {cfg.n_dis}": cfg.n_dis < 1,
        f"kl_reduction must be one of {', '.join(KL)}, got {cfg.kl_reduction!r}": cfg.kl_reduction not in KL,
        f"phase1_epochs must be >= 1, got {cfg.phase1_epochs}": cfg.phase1_epochs < 1,
        f"alpha needs 1 to {2 * len(cfg.channels)} weights (one per encoder layer used), got {cfg.alpha}":
            not 1 <= len(cfg.alpha) <= 2 * len(cfg.channels),
        f"channels needs at least one level, got {cfg.channels}": not cfg.channels,
        f"images of {shape[1]}x{shape[2]} are too small for {len(cfg.channels) - 1} max-pools":
            min(shape[1:]) < 2 ** (len(cfg.channels) - 1),
    }
    bad = [msg for msg, failed in problems.items() if failed]
    if bad:
        raise RaygenError(f"{where}: {'; '.join(bad)}")


def semi_supervised_labels(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """``y`` with all but a fixed, seeded ``fraction`` of the items set to -1 (unlabelled)."""
    k = max(1, round(fraction * len(y)))
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:k].to(y.device)
    out = torch.full_like(y, -1)
    out[keep] = y[keep]
    return out
