"""What a method declares about itself: the one place that names its engine, recipes, needs and options.

Every method slice (``puppetry/methods/<name>/``) has a :class:`Method` called ``METHOD`` in its
``__init__.py``. The package ``__init__`` imports nothing heavy (no torch, no networks): the CLI reads
every descriptor to build its flags, so an engine class or a recipe is named by a ``"module:attribute"``
string and imported only when it is used (:func:`load`).

The commands, the Python API and the web app read these descriptors through
:mod:`puppetry.methods.registry`; none of them names a method in its own code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from puppetry.engines.base import EngineNeeds

COMMANDS = ("animate", "bench", "evaluate", "template")


@dataclass(frozen=True)
class Option:
    """One engine option on the command line: ``flag`` sets field ``key`` of the engine's config.

    Attributes:
        flag: the command-line flag, e.g. ``--no-stitching``.
        key: the engine config field it sets, e.g. ``stitching``.
        help: the flag's help line.
        switch: for a flag without a value, the config value it sets (``--no-stitching`` sets False);
            None for a flag that takes a value.
        type: converts the flag's value (flags with a value).
        choices: the values the flag accepts, or None for any.
        commands: the commands that offer the flag (``animate``, ``bench``, ``evaluate``, ``template``).
        env: the environment variable read when the flag is absent (weights), or None.
        weights: True for a weights path (listed by ``puppetry animate --help`` as what the method needs).
        app_label: a switch shown in the web app as a checkbox with this label (ticked: the config's
            default; unticked: ``switch``); None keeps it off the page.
        requires: config values the option only makes sense with; ``puppetry evaluate`` gives it to the
            engine variants whose preset holds them (``--ldnet-weights`` goes to ``warp+ldnet``).
    """

    flag: str
    key: str
    help: str
    switch: Any = None
    type: Callable[[str], Any] = str
    choices: tuple | None = None
    commands: tuple[str, ...] = ("animate",)
    env: str | None = None
    weights: bool = False
    app_label: str | None = None
    requires: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.flag.startswith("--"):
            raise ValueError(f"option {self.flag!r} must start with --")
        unknown = set(self.commands) - set(COMMANDS)
        if unknown:
            raise ValueError(f"option {self.flag}: unknown commands {sorted(unknown)}")
        if self.app_label is not None and self.switch is None:
            raise ValueError(f"option {self.flag}: only a switch can be a checkbox in the app")

    @property
    def dest(self) -> str:
        """The argparse attribute of the flag (``--no-stitching`` -> ``no_stitching``)."""
        return self.flag[2:].replace("-", "_")

    @property
    def elem_id(self) -> str:
        """The web app's element id of the option's checkbox (``paste_back`` -> ``paste-back``)."""
        return self.key.replace("_", "-")

    def given(self, parsed: dict[str, Any]) -> bool:
        """Whether the flag was given on the command line (``parsed``: ``vars(args)``)."""
        value = parsed.get(self.dest)
        return bool(value) if self.switch is not None else value is not None

    def value(self, parsed: dict[str, Any]) -> Any:
        """The config value the given flag sets."""
        return self.switch if self.switch is not None else parsed[self.dest]

    def fits(self, preset: dict[str, Any]) -> bool:
        """Whether an engine configured with ``preset`` can take this option (see ``requires``)."""
        return all(preset.get(k) == v for k, v in self.requires.items())


@dataclass(frozen=True)
class Method:
    """A method of puppetry: what it is called, what it runs, trains and needs.

    Attributes:
        name: the method's name (``--engine NAME`` when it has an engine).
        summary: one line for ``--help`` and the README.
        paper: the paper it implements (file in ``../shared/papers``), or "" for our own.
        engine: ``"module:EngineClass"``; the class is built as ``EngineClass(transfer, config)``, or
            None for a method without an engine of its own (LD-Net serves the warp engine).
        config: ``"module:ConfigClass"``, the engine's settings dataclass; option keys are its fields.
        recipes: ``puppetry train`` names and their ``"module:RecipeClass"`` (one method may train
            several networks: wg-GAN and hrh-GAN).
        not_trainable: why ``puppetry train NAME`` has nothing to do, for methods without recipes.
        needs: what the engine requires from the pipeline.
        options: the engine's command-line options.
        video_source: the engine edits source videos (portrait video editing).
        keypoint_templates: the engine is driven by LivePortrait keypoint templates.
        variants: engine variants for ``puppetry evaluate``: name -> preset config values.
        app_weights_key: the config field a weights folder typed in the web app sets, or None.
        template_recorder: ``"module:function"`` that records a keypoint template with this engine
            (``puppetry template --engine NAME``), called as ``function(driving, engine, smoothing)``.
        commands: commands of the method's own (``puppetry synthesize``): name -> ``"module:add_parser"``,
            called with the CLI's subparsers; the module should import nothing heavy at the top.
        speech_driver: ``"module:function"`` that turns a speech recording into driving frames
            (``puppetry animate -a``), called as ``function(audio_path, weights, fps, controls, seed)`` and
            returning ``(frames, num_frames)``; None for a method that does not listen.
        speech_weights_env: the environment variable naming the speech model's weights when
            ``--audio-weights`` is not given.
        reference_bench: ``"module:function"`` timing the engine against its reference implementation
            (``puppetry bench --against-reference DIR``), called as ``function(reference_dir,
            engine_options, reps)`` and returning the table to print; None when there is none.
    """

    name: str
    summary: str
    paper: str = ""
    engine: str | None = None
    config: str | None = None
    recipes: dict[str, str] = field(default_factory=dict)
    not_trainable: str | None = None
    needs: EngineNeeds = field(default_factory=EngineNeeds)
    options: tuple[Option, ...] = ()
    video_source: bool = False
    keypoint_templates: bool = False
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_weights_key: str | None = None
    template_recorder: str | None = None
    commands: dict[str, str] = field(default_factory=dict)
    speech_driver: str | None = None
    speech_weights_env: str | None = None
    reference_bench: str | None = None

    def __post_init__(self) -> None:
        if (self.engine is None) != (self.config is None):
            raise ValueError(f"method {self.name}: give both engine and config, or neither")
        if self.recipes and self.not_trainable:
            raise ValueError(f"method {self.name}: a method with recipes is trainable")

    def options_for(self, command: str) -> tuple[Option, ...]:
        """The options that ``command`` offers for this method's engine."""
        return tuple(o for o in self.options if command in o.commands)

    def engine_options(self, parsed: dict[str, Any], command: str = "animate") -> dict[str, Any]:
        """Config values from parsed flags (``vars(args)``): only the flags that were given."""
        return {o.key: o.value(parsed) for o in self.options_for(command) if o.given(parsed)}


def load(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"{target!r} is not of the form 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)
