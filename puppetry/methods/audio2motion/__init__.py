"""Speech-driven motion (LivePortrait, paper 001, App. C): a voice recording in, a talking portrait out.

``puppetry train audio2motion`` learns lip-open and the shape of the lips and jaw from log-mel features of
the speech (a temporal CNN, speaker-independent); ``puppetry animate -s portrait.jpg -a speech.wav``
turns a recording into per-frame motion (the learned mouth, generated blinks and head sway) that drives
any engine taking landmark motion. See the README section "Talking portraits from speech".

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.methods.descriptor import Method

WEIGHTS_ENV = "PUPPETRY_AUDIO_WEIGHTS"

METHOD = Method(
    name="audio2motion",
    summary="speech to lip, jaw, blink and head motion (drives animate -a; no engine of its own)",
    paper="001_21538dae9badc901.txt",
    recipes={"audio2motion": "puppetry.methods.audio2motion.recipe:Audio2MotionRecipe"},
    speech_driver="puppetry.methods.audio2motion.speech:speech_driving",
    speech_weights_env=WEIGHTS_ENV,
)
