"""Register classes or factories by snake_case name and build them from config by that name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from signlip.errors import SignlipError


class Registry:
    """A name → factory table. `build(name, **kwargs)` is how config turns into objects.

    Each entry may carry metadata (plain keyword arguments of `register`) that tests and tools read without building
    the entry, e.g. a model's small example input: `MODELS.register("landmark_gru", example=example_input)`.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._metadata: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **metadata: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            self._metadata[name] = dict(metadata)
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise SignlipError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def metadata(self, name: str) -> dict[str, Any]:
        """The metadata `name` was registered with (a copy; empty when none was given)."""
        self.get(name)  # an unknown name is the same one-line error as in `get`
        return dict(self._metadata[name])

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


MODELS = Registry("model")
DATASETS = Registry("dataset")
OBJECTIVES = Registry("objective")
EVALUATORS = Registry("evaluator")
# Preprocessing kind (a checkpoint's preprocessing["kind"]) → the reader of new inputs for `signlip predict`.
READERS = Registry("input reader")

# Modules that register entries on import; imported on first use so that `import signlip` stays light.
MODEL_MODULES = ("signlip.models.landmark_gru", "signlip.models.asl_tcn_transformer", "signlip.models.lip",
                 "signlip.models.i3d", "signlip.models.mobilenetv3")
DATA_MODULES = ("signlip.data.landmarks.datamodule", "signlip.data.clips.datamodule",
                "signlip.data.holistic.datamodule", "signlip.data.landmarks.reader", "signlip.data.clips.reader",
                "signlip.data.holistic.reader")
OBJECTIVE_MODULES = ("signlip.objectives.classification", "signlip.objectives.ctc",
                     "signlip.objectives.sequence_distillation")
EVALUATOR_MODULES = ("signlip.evaluators.classification", "signlip.evaluators.wer")


def load_all() -> None:
    """Import every module that registers models or data modules."""
    for module in MODEL_MODULES + DATA_MODULES + OBJECTIVE_MODULES + EVALUATOR_MODULES:
        importlib.import_module(module)


def build_model(name: str, **kwargs: Any):
    """Build a registered model by name."""
    load_all()
    return MODELS.build(name, **kwargs)


def build_data(name: str, **kwargs: Any):
    """Build a registered data module by name."""
    load_all()
    return DATASETS.build(name, **kwargs)
