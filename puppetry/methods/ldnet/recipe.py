"""Training LD-Net in two stages (paper 002, Sec. 3.1, Fig. 3).

Per step, ``S`` is a batch of training identities and ``T`` a batch of other identities; ``l_S1``, ``l_S2``
are two frames of ``S`` and ``l_T`` a frame of ``T`` (normalised landmarks ``B x N x 2``).

Stage 1 (``E_P``, ``N_I``, ``G`` against ``C``):
    branch 1: ``l'_S1 = G(E_P(l_S2), N_I(S))`` should equal ``l_S2``;
    branch 2: ``l'_T = G(E_P(l_S2), N_I(T))`` should carry no trace of ``S``:
    ``L_C = E[-log P(S | l'_T)]`` (Eq. 1) trains ``C``;
    ``L_G = λrec E||l_S2 - l'_S1||² + λC E[log P(S | l'_T)]`` (Eq. 2) trains ``E_P, N_I, G``.

Stage 2 (``E_I``, ``G`` against ``D`` and ``C``; ``E_P`` frozen):
    branch 1: ``l'_S2 = G(E_P(l_S2), E_I(l_S1))`` should equal ``l_S2`` (Eq. 6);
    branch 2: ``l'_T = G(E_P(l_S2), E_I(l_T))`` has ``T``'s identity and ``l_S2``'s pose/expression;
    ``L_D = E[(D(l_S2) - 1)² + (D(l'_T) + 1)²]`` (Eq. 3);
    ``L_C = E[-log P(T | l_T)] + E[-log(1 - P(T | l'_T))]`` (Eq. 4);
    ``L_G = λrec L_rec + λcont E||E_P(l_S2) - E_P(l'_T)||² + λD E[D(l'_T)²] + λC E[-log P(T | l'_T)]``
    (Eq. 5-7).

The squared distance between landmark sets is the per-point squared Euclidean distance, averaged over
points. Each trained module is called once per update (branches are batched together), so DDP sees one
forward per backward; frozen modules are called without their DDP wrapper.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.ldnet.config import LDNetConfig
from puppetry.methods.ldnet.landmarks import jitter, load_corpus, sample_frames, split_identities
from puppetry.methods.ldnet.networks import build_networks
from puppetry.training.distributed import wrap_ddp
from puppetry.training.freezing import frozen
from puppetry.training.recipe import Recipe, Stage
from puppetry.training.config import to_dict

logger = logging.getLogger(__name__)

WEIGHTS_FORMAT = "puppetry-ldnet"


def point_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-point squared Euclidean distance averaged over points and batch (``B x N x 2`` inputs)."""
    return ((a - b) ** 2).sum(-1).mean()


def log_not_class(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log(1 - P(label))`` per row, computed stably as logsumexp over the other classes minus the total."""
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return torch.logsumexp(others, 1) - torch.logsumexp(logits, 1)


def draw_landmarks(sets: list[tuple[np.ndarray, tuple[int, int, int]]], size: int = 192) -> np.ndarray:
    """Normalised landmark sets drawn as coloured dots on one ``size x size x 3`` uint8 canvas."""
    canvas = np.full((size, size, 3), 255, np.uint8)
    for points, color in sets:
        xy = np.clip(((np.asarray(points) * 0.45 + 0.5) * size).round().astype(int), 0, size - 1)
        layer = np.zeros((size, size), np.uint8)
        layer[xy[:, 1], xy[:, 0]] = 255
        layer = cv2.dilate(layer, np.ones((2, 2), np.uint8)) > 0
        canvas[layer] = color
    return canvas


class LDNetRecipe(Recipe):
    """``puppetry train ldnet``: the two LD-Net stages on a prepared dataset's landmarks."""

    name = "ldnet"
    config_class = LDNetConfig

    def __init__(self, config: LDNetConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        corpus = load_corpus(data, config.model.landmarks, config.data.min_frames)
        self.train_set, self.heldout = split_identities(corpus, config.data.holdout, config.train.seed)
        logger.info("LD-Net data: %d training identities (%d frames), %d held out", len(self.train_set.identities),
                    self.train_set.num_frames, 0 if self.heldout is None else len(self.heldout.identities))
        torch.manual_seed(config.train.seed)           # identical initial weights on every process
        self.nets = build_networks(config.model, len(self.train_set.identities)).to(trainer.device)
        self.ddp: dict[str, nn.Module] = {}

    def stages(self) -> list[Stage]:
        return [Stage("stage1", self.config.stage1.steps), Stage("stage2", self.config.stage2.steps)]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        n = self.nets
        if stage.name == "stage1":
            trained = {"gen": ["E_P", "N_I", "G"], "C": ["C"]}
            lr, betas = self.config.stage1.lr, self.config.stage1.betas
        else:
            # Stage 2's classifier plays a different game (Eq. 4) from Stage 1's (Eq. 1): it starts afresh.
            torch.manual_seed(self.config.train.seed + 1)
            n["C"] = build_networks(self.config.model, len(self.train_set.identities))["C"].to(self.trainer.device)
            trained = {"gen": ["E_I", "G"], "D": ["D"], "C": ["C"]}
            lr, betas = self.config.stage2.lr, self.config.stage2.betas
        for p in self.nets.parameters():
            p.requires_grad_(False)
        self.ddp = {}
        optimizers = {}
        for opt_name, names in trained.items():
            params = []
            for name in names:
                for p in n[name].parameters():
                    p.requires_grad_(True)
                self.ddp[name] = wrap_ddp(n[name], self.trainer.ctx)
                params += list(n[name].parameters())
            optimizers[opt_name] = torch.optim.Adam(params, lr=lr, betas=betas)
        return optimizers

    # ------------------------------------------------------------------------------------------- batches
    def _batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        k = len(self.train_set.identities)
        b = self.config.train.batch_size
        s = rng.integers(0, k, b)
        t = (s + rng.integers(1, k, b)) % k
        amount = self.config.data.jitter
        frames = [jitter(sample_frames(self.train_set, ids, rng), amount, rng) for ids in (s, s, t)]
        dev = self.trainer.device
        l_s1, l_s2, l_t = (torch.from_numpy(f).to(dev) for f in frames)
        return torch.from_numpy(s).to(dev), torch.from_numpy(t).to(dev), l_s1, l_s2, l_t

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        if stage.name == "stage1":
            return self._stage1(rng)
        return self._stage2(rng)

    def _stage1(self, rng: np.random.Generator) -> dict[str, float]:
        cfg, n, d = self.config.stage1, self.nets, self.ddp
        s, t, _, l_s2, _ = self._batch(rng)
        b = len(s)
        with torch.no_grad(), self.trainer.autocast():
            l_t_fake = n["G"](n["E_P"](l_s2), n["N_I"](t)).float()
        with self.trainer.autocast():
            loss_c = F.cross_entropy(d["C"](l_t_fake).float(), s)                       # Eq. 1
        self.trainer.optimize(loss_c, "C")

        with self.trainer.autocast():
            code = d["E_P"](l_s2)
            out = d["G"](torch.cat([code, code]), d["N_I"](torch.cat([s, t]))).float()
            l_s1_rec, l_t_fake = out[:b], out[b:]
            rec = point_distance(l_s1_rec, l_s2)
            with frozen(n["C"]):
                log_p = F.log_softmax(n["C"](l_t_fake).float(), 1).gather(1, s[:, None]).mean()
            loss_g = cfg.lambda_rec * rec + cfg.lambda_c * log_p                           # Eq. 2
        self.trainer.optimize(loss_g, "gen")
        return {"loss_G": loss_g.item(), "rec": rec.item(), "log_p_S": log_p.item(), "loss_C": loss_c.item()}

    def _stage2(self, rng: np.random.Generator) -> dict[str, float]:
        cfg, n, d = self.config.stage2, self.nets, self.ddp
        s, t, l_s1, l_s2, l_t = self._batch(rng)
        b = len(s)
        with torch.no_grad(), self.trainer.autocast():
            code = n["E_P"](l_s2)
            l_t_fake = n["G"](code, n["E_I"](l_t)).float()
        with self.trainer.autocast():
            score = d["D"](torch.cat([l_s2, l_t_fake])).float()
            loss_d = ((score[:b] - 1) ** 2).mean() + ((score[b:] + 1) ** 2).mean()        # Eq. 3
            logits = d["C"](torch.cat([l_t, l_t_fake])).float()
            loss_c = F.cross_entropy(logits[:b], t) - log_not_class(logits[b:], t).mean()  # Eq. 4
        self.trainer.optimize(loss_d, "D")
        self.trainer.optimize(loss_c, "C")

        with self.trainer.autocast():
            with frozen(n["E_P"]):
                code = n["E_P"](l_s2)
            out = d["G"](torch.cat([code, code]), d["E_I"](torch.cat([l_s1, l_t]))).float()
            l_s2_rec, l_t_fake = out[:b], out[b:]
            rec = point_distance(l_s2_rec, l_s2)                                           # Eq. 6
            with frozen(n["E_P"], n["D"], n["C"]):
                cont = ((code.float() - n["E_P"](l_t_fake).float()) ** 2).sum(-1).mean()    # Eq. 5
                adv_d = (n["D"](l_t_fake).float() ** 2).mean()
                adv_c = F.cross_entropy(n["C"](l_t_fake).float(), t)
            loss_g = cfg.lambda_rec * rec + cfg.lambda_cont * cont + cfg.lambda_d * adv_d + cfg.lambda_c * adv_c
        self.trainer.optimize(loss_g, "gen")                                               # Eq. 7
        return {"loss_G": loss_g.item(), "rec": rec.item(), "cont": cont.item(), "adv_D": adv_d.item(),
                "adv_C": adv_c.item(), "loss_D": loss_d.item(), "loss_C": loss_c.item()}

    # --------------------------------------------------------------------------------- samples, export
    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Four examples: input l_S2 (grey), reconstruction (green), with another identity (red)."""
        rng = np.random.default_rng(self.config.train.seed + 7)
        k = len(self.train_set.identities)
        s = rng.integers(0, k, 4)
        t = (s + rng.integers(1, k, 4)) % k
        l_s2 = torch.from_numpy(sample_frames(self.train_set, s, rng)).to(self.trainer.device)
        l_t = torch.from_numpy(sample_frames(self.train_set, t, rng)).to(self.trainer.device)
        n = self.nets
        with torch.no_grad():
            code = n["E_P"](l_s2)
            if stage.name == "stage1":
                rec, other = n["G"](code, n["N_I"](torch.from_numpy(s).to(code.device))), \
                    n["G"](code, n["N_I"](torch.from_numpy(t).to(code.device)))
            else:
                rec, other = n["G"](code, n["E_I"](l_s2)), n["G"](code, n["E_I"](l_t))
        tiles = [draw_landmarks([(l_s2[i].cpu().numpy(), (150, 150, 150)), (rec[i].cpu().numpy(), (0, 160, 0)),
                                 (other[i].cpu().numpy(), (220, 0, 0))]) for i in range(4)]
        return {"landmarks": np.concatenate(tiles, 1)}

    def export(self, run_dir: Path) -> Path:
        """``RUN/ldnet.pt``: E_P, E_I and G with the model config, then the Table 1 report."""
        from puppetry.training.checkpoint import save_checkpoint

        path = run_dir / "ldnet.pt"
        save_checkpoint(path, {
            "format": WEIGHTS_FORMAT, "model": to_dict(self.config.model),
            "identities": list(self.train_set.identities),
            **{name: self.nets[name].state_dict() for name in ("E_P", "E_I", "G")},
        })
        logger.info("wrote %s", path)
        from puppetry.methods.ldnet.report import write_report
        write_report(run_dir, path, self.heldout, self.train_set)
        return path
