"""From a checkpoint to a working recogniser: predict, stream, export, benchmark."""


def refuse_gloss_checkpoint(checkpoint: dict, what: str) -> None:
    """Export, benchmark and streaming score one class per input; a continuous-recognition (CTC) checkpoint outputs
    a gloss sequence, which they do not handle yet — one clear line, not a wrong table."""
    from signlip.errors import SignlipError

    if checkpoint.get("preprocessing", {}).get("target") == "glosses":
        raise SignlipError(f"{what} of continuous-recognition (CTC) checkpoints is not built yet — `signlip predict "
                           f"ckpt=… input=…` decodes their gloss sequences, `signlip evaluate` scores their WER")

