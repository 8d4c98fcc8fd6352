"""LD-Net's disentanglement test (paper 002, Sec. 4.1, Table 1) on identities held out of training.

Pairs of landmark sets are drawn in three patterns and encoded by ``E_I`` and ``E_P``; each encoder's
codes are reduced to 8 dimensions by PCA (fitted on the codes of all held-out frames) and the mean
Euclidean distance of each pattern is reported:

- same identity: two frames of one held-out identity (different pose/expression);
- same pose/expression: a frame ``b_t`` of identity B, and identity A given exactly that pose and
  expression change. The paper renders such pairs from 3D face fits; we build them from the 3D
  landmarks: with ``P = s E R^T + c`` (:mod:`puppetry.face.pose`), A's frame is
  ``s_A (E_A0 + E_Bt - E_B0) R_Bt^T + c_A``, where ``A0`` and ``B0`` are the identities' first (reference)
  frames: A's own face shape, B's expression change since its reference frame, and B's head rotation;
- both different: a frame of A and a frame of B.

A disentangled LD-Net gives a small ``E_I`` distance for same-identity pairs and a small ``E_P``
distance for same-pose pairs, relative to "both different".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppetry.face.pose import compose, decompose
from puppetry.methods.ldnet.inference import LDNet
from puppetry.methods.ldnet.landmarks import LandmarkCorpus, normalize

PATTERNS = ("same_identity", "same_pose", "both_different")


@dataclass
class DisentanglementResult:
    """Mean latent distances (Table 1) and how they were obtained."""

    identity_space: dict[str, float]
    pose_space: dict[str, float]
    pairs: int
    identities: list[str]
    frames: int
    method: str = ("PCA to 8 dimensions fitted on all held-out frames' codes; same-pose pairs made by giving "
                   "identity A the expression change and head rotation of identity B's frame (3D landmarks)")

    def as_dict(self) -> dict:
        return {"E_I": self.identity_space, "E_P": self.pose_space, "pairs_per_pattern": self.pairs,
                "heldout_identities": self.identities, "heldout_frames": self.frames, "pairs": self.method}


def pca_projection(codes: np.ndarray, dims: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``D`` and the top ``D x dims`` principal axes of ``M x D`` codes."""
    mean = codes.mean(0)
    _, _, vt = np.linalg.svd(codes - mean, full_matrices=False)
    return mean, vt[:dims].T


def same_pose_landmarks(corpus: LandmarkCorpus, a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Identity ``a`` posed like frame ``t`` of identity ``b`` (see module docstring).

    Args:
        corpus: held-out identities with 478-point 3D landmarks in ``raw``.
        a, b, t: ``P`` identity indices and frame indices into ``b``'s frames.
    Returns:
        ``P x 478 x 2`` landmarks in pixels of A's reference frame.
    """
    ref = np.stack([corpus.raw[i][0] for i in range(len(corpus.identities))]).astype(np.float64)
    ref_pose = decompose(ref)
    bt = np.stack([corpus.raw[j][k] for j, k in zip(b, t)]).astype(np.float64)
    bt_pose = decompose(bt)
    expression = ref_pose.expression[a] + bt_pose.expression - ref_pose.expression[b]
    points = compose(expression, bt_pose.rotation, ref_pose.scale[a], ref_pose.center[a])
    return points[..., :2]


def evaluate_disentanglement(net: LDNet, corpus: LandmarkCorpus, pairs: int = 20000, seed: int = 0,
                             batch: int = 4096) -> DisentanglementResult:
    """Table 1 for ``net`` on the held-out ``corpus`` (478-point landmarks; at least two identities)."""
    if net.num_points != 478:
        raise ValueError("the same-pose pairs are built from 478-point 3D landmarks; this LD-Net uses "
                         f"{net.model.landmarks}")
    if len(corpus.identities) < 2:
        raise ValueError("the disentanglement test needs at least two held-out identities")
    rng = np.random.default_rng(seed)
    frames = np.concatenate(corpus.points)                       # M x N x 2, normalised
    offsets = np.cumsum([0] + [len(p) for p in corpus.points])
    counts = np.diff(offsets)

    def encode(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, poses = [], []
        for i in range(0, len(points), batch):
            ids.append(net.identity_code(points[i:i + batch]))
            poses.append(net.pose_code(points[i:i + batch]))
        return np.concatenate(ids), np.concatenate(poses)

    id_codes, pose_codes = encode(frames)
    id_mean, id_axes = pca_projection(id_codes)
    pose_mean, pose_axes = pca_projection(pose_codes)
    id_low = (id_codes - id_mean) @ id_axes
    pose_low = (pose_codes - pose_mean) @ pose_axes

    k = len(corpus.identities)
    a = rng.integers(0, k, pairs)
    b = (a + rng.integers(1, k, pairs)) % k

    def frame_of(ident: np.ndarray) -> np.ndarray:
        return offsets[ident] + (rng.random(len(ident)) * counts[ident]).astype(np.int64)

    def distances(i: np.ndarray, j: np.ndarray, low: np.ndarray) -> float:
        return float(np.linalg.norm(low[i] - low[j], axis=1).mean())

    same_id = (frame_of(a), frame_of(a))
    both = (frame_of(a), frame_of(b))
    # Same pose/expression: synthetic frames of A, encoded here.
    t = (rng.random(pairs) * counts[b]).astype(np.int64)
    synthetic = normalize(same_pose_landmarks(corpus, a, b, t))[0].astype(np.float32)
    syn_id, syn_pose = encode(synthetic)
    syn_id_low = (syn_id - id_mean) @ id_axes
    syn_pose_low = (syn_pose - pose_mean) @ pose_axes
    partner = offsets[b] + t

    identity_space = {
        "same_identity": distances(*same_id, id_low),
        "same_pose": float(np.linalg.norm(syn_id_low - id_low[partner], axis=1).mean()),
        "both_different": distances(*both, id_low),
    }
    pose_space = {
        "same_identity": distances(*same_id, pose_low),
        "same_pose": float(np.linalg.norm(syn_pose_low - pose_low[partner], axis=1).mean()),
        "both_different": distances(*both, pose_low),
    }
    return DisentanglementResult(identity_space, pose_space, pairs, list(corpus.identities), len(frames))
