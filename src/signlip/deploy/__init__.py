"""From a checkpoint to a working recogniser: predict, stream, export, benchmark."""

from typing import Any


def is_gloss_checkpoint(checkpoint: dict[str, Any]) -> bool:
    """A continuous-recognition checkpoint: a gloss sequence per input (CTC), not one class."""
    return checkpoint.get("preprocessing", {}).get("target") == "glosses"
