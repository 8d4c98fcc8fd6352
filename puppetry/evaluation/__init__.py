"""Evaluation of animation engines: self- and cross-reenactment with pixel, perceptual, motion and
identity metrics, the static baseline, and a JSON + HTML report (``puppetry evaluate``).

Modules: :mod:`~puppetry.evaluation.pixel_metrics` (L1, PSNR, SSIM), :mod:`~puppetry.evaluation.lpips`
(AlexNet LPIPS), :mod:`~puppetry.evaluation.inception` and :mod:`~puppetry.evaluation.fid` (FID),
:mod:`~puppetry.evaluation.face_metrics` (AKD, MKR, APD, gaze), :mod:`puppetry.face.identity` (CSIM, AED),
:mod:`~puppetry.evaluation.runner` (the runs) and :mod:`~puppetry.evaluation.report` (the files).
Networks are imported only when used.
"""

from puppetry.evaluation.runner import METRICS, STATIC, EvaluateConfig, Evaluation, SampleStrip, evaluate
from puppetry.evaluation.report import render_html, write_report

__all__ = ["METRICS", "STATIC", "EvaluateConfig", "Evaluation", "SampleStrip", "evaluate", "render_html",
           "write_report"]
