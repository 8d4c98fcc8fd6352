"""LivePortrait (paper 001): implicit-keypoint portrait animation that runs the official release weights.

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.engines.base import EngineNeeds
from puppetry.methods.descriptor import Method, Option

WEIGHTS_ENV = "PUPPETRY_LIVEPORTRAIT_DIR"
DEVICE_HELP = "cpu (default), cuda, cuda:N or auto"

METHOD = Method(
    name="liveportrait",
    summary="LivePortrait on the release weights (--checkpoint-dir)",
    paper="001_21538dae9badc901.txt",
    engine="puppetry.methods.liveportrait.engine:LivePortraitEngine",
    config="puppetry.methods.liveportrait.engine:LivePortraitConfig",
    recipes={"liveportrait": "puppetry.methods.liveportrait.training.recipe:LivePortraitRecipe"},
    needs=EngineNeeds(source_landmarks=True, driving_pixels=True, face_crops=True, weights=True),
    options=(
        Option("--checkpoint-dir", "checkpoint_dir", weights=True, env=WEIGHTS_ENV,
               commands=("animate", "bench", "evaluate", "template"),
               help=f"LivePortrait weights folder (default: ${WEIGHTS_ENV})"),
        Option("--device", "device", commands=("animate", "bench", "evaluate", "template"), help=DEVICE_HELP),
        Option("--precision", "precision", choices=("auto", "fp32", "fp16", "bf16"), commands=("animate", "bench"),
               help="W and G's precision (default auto: fp16 on CUDA, bf16 on a CPU with native bf16, else fp32; "
                    "fp32 is the conformance-exact path)"),
        Option("--compile", "compile", switch=True, commands=("animate", "bench"),
               help="torch.compile the warping module and decoder (CPU or CUDA; the first frames compile)"),
        Option("--batch-size", "batch_size", type=int, help="driving frames per network call (default 1)"),
        Option("--no-stitching", "stitching", switch=False, app_label="Stitching",
               help="turn off the stitching module"),
        Option("--eyes-retargeting", "eyes_retargeting", switch=True,
               help="drive the eyes through R_eyes (Sec. 4.3)"),
        Option("--lip-retargeting", "lip_retargeting", switch=True, help="drive the lips through R_lip (Sec. 4.3)"),
        Option("--no-lip-normalize", "normalize_lip", switch=False, help="keep an open source mouth open at rest"),
        Option("--no-paste-back", "paste_back", switch=False, app_label="Paste back into the full image",
               help="write the 512x512 face crop, not the full image"),
        Option("--crop-driving", "crop_driving", choices=("auto", "always", "never"),
               help="crop driving frames around the face (auto: unless they are square)"),
    ),
    video_source=True,
    keypoint_templates=True,
    app_weights_key="checkpoint_dir",
    template_recorder="puppetry.methods.liveportrait.recording:record_template",
    reference_bench="puppetry.methods.liveportrait.reference_bench:reference_table",
)
