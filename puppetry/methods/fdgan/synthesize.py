"""``puppetry synthesize``: semantic synthesis with FD-GAN (paper 002, Fig. 1): a label map drawn in the style
of a portrait.

The style portrait's face is cropped as ``puppetry prepare`` crops training clips, parsed into our labels
(:func:`puppetry.face.parsing.face_parsing`) and written into the feature dictionary; the translator reads it
at the given label map. The weights must come from ``puppetry train fdgan --set model.condition=labels``.

A label map is an image in our labels (:data:`puppetry.face.parsing.MASK_LABELS`): a grayscale PNG with one
value 0-8 per pixel, or an RGB image in :data:`puppetry.face.parsing.PALETTE`'s colours (what
:func:`~puppetry.face.parsing.colorize` writes, so a parsed portrait can be edited in any paint program).
The output has the map's size.

The module imports nothing heavy at the top: the CLI adds the command's parser at start-up.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from puppetry.errors import MediaError, WeightsError
from puppetry.face.parsing import MASK_LABELS, PALETTE

logger = logging.getLogger(__name__)


def labels_from_rgb(rgb: np.ndarray, name: str = "label map") -> np.ndarray:
    """``H x W x 3`` uint8 (gray values 0-8 or palette colours) -> ``H x W`` uint8 labels.

    Raises:
        MediaError: a pixel is neither a label value nor a palette colour (one line, with an example).
    """
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() and rgb.max() < len(MASK_LABELS):
        return rgb[..., 0].copy()
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    palette = (PALETTE[:, 0].astype(np.int64) << 16) | (PALETTE[:, 1].astype(np.int64) << 8) | PALETTE[:, 2]
    order = np.argsort(palette)
    pos = np.clip(np.searchsorted(palette[order], codes), 0, len(palette) - 1)
    labels = order[pos]
    bad = palette[labels] != codes
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise MediaError(f"{name}: pixel ({x}, {y}) is {tuple(int(v) for v in rgb[y, x])}, neither a label value "
                         f"0-{len(MASK_LABELS) - 1} in gray nor a label colour ({bad.mean():.0%} of the pixels); "
                         f"labels: {', '.join(MASK_LABELS)}")
    return labels.astype(np.uint8)


def synthesize(net, size: int, labels: np.ndarray, style: np.ndarray, style_landmarks: np.ndarray,
               device="cpu") -> np.ndarray:
    """Draw ``labels`` (``H x W`` uint8) in the style of the face with ``478 x 3`` ``style_landmarks`` in the
    ``style`` image (``H' x W' x 3`` uint8); returns ``H x W x 3`` uint8 RGB.

    ``net``: a :class:`~puppetry.methods.fdgan.networks.FDGan` trained on label maps at side ``size``;
    ``device``: the torch device it is on.
    """
    import cv2
    import torch

    from puppetry.data.tracking import face_crop_box
    from puppetry.face.crop import apply_affine, crop_image
    from puppetry.face.parsing import PersonSegmenter, face_parsing
    from puppetry.methods.fdgan.conditions import label_image
    from puppetry.methods.fdgan.data import to_images, to_tensor

    crop, m = crop_image(style, face_crop_box(style_landmarks, style.shape), size)
    with PersonSegmenter() as segmenter:
        style_labels = face_parsing(crop, apply_affine(style_landmarks, m), segmenter.segment(crop))
    target = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
    with torch.no_grad():
        style_condition = torch.from_numpy(label_image(style_labels))[None].to(device)
        dictionaries = net.extractor(to_tensor([crop], device), style_condition)
        out = to_images(net.translator(torch.from_numpy(label_image(target))[None].to(device), dictionaries))[0]
    h, w = labels.shape
    if (h, w) != (size, size):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA if h < size else cv2.INTER_LINEAR)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    from puppetry.methods.fdgan import WEIGHTS_ENV
    from puppetry.methods.liveportrait import DEVICE_HELP

    p = sub.add_parser("synthesize", help="draw a label map in the style of a portrait (FD-GAN, paper 002 Fig. 1)",
                       description="Semantic synthesis with FD-GAN: the face of --style drawn at the layout of --map "
                                   f"(our labels: {', '.join(f'{i} {n}' for i, n in enumerate(MASK_LABELS))}; gray "
                                   "values or the label colours of a parsed preview).")
    p.add_argument("--map", required=True, help="label map image (PNG), the layout to draw")
    p.add_argument("--style", required=True, help="portrait whose face gives the appearance")
    p.add_argument("-o", "--output", required=True, help="output image (.png or .jpg)")
    p.add_argument("--fdgan-weights", help=f"FD-GAN weights trained on label maps, RUN/fdgan.pt (default: ${WEIGHTS_ENV})")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from puppetry.engines.device import engine_device
    from puppetry.engines.weights import find_weights
    from puppetry.media.image import read_image, write_image
    from puppetry.methods.fdgan import WEIGHTS_ENV
    from puppetry.methods.fdgan.engine import load_fdgan
    from puppetry.pipeline.source import find_source_faces

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise MediaError(f"--output '{out}': write a .png or .jpg")
    device = engine_device(args.device)
    path = find_weights(args.fdgan_weights, None, "fdgan.pt", WEIGHTS_ENV, "fdgan", "--fdgan-weights",
                        "puppetry train fdgan --set model.condition=labels")
    net, model = load_fdgan(path, device)
    if model.condition != "labels":
        raise WeightsError(f"--fdgan-weights: '{path}' was trained on {model.condition} (model.condition); "
                           f"synthesize needs weights from 'puppetry train fdgan --set model.condition=labels'")
    labels = labels_from_rgb(read_image(args.map), f"--map '{args.map}'")
    style = read_image(args.style)
    face = find_source_faces(style, args.style, max_faces=1)
    image = synthesize(net, model.size, labels, style, face.landmarks[0], device)
    write_image(out, image)
    logger.info("wrote %s (%d x %d)", out, image.shape[1], image.shape[0])
    return 0
