"""Doctor checks of continuous recognition (gloss sentences, CTC): vocabulary coverage, glosses only val/test hold,
sentence lengths, and the CTC length pre-flight over every split — the class-based audits (class balance, chance
bounds, the per-class picture) do not apply to sentences."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from signlip.data.base import DataBundle
from signlip.doctor.check import Check, few
from signlip.errors import SignlipError

RARE = 3  # a gloss seen fewer times in train can hardly be learnt


def audit_glosses(data: DataBundle) -> list[Check]:
    """Vocabulary coverage of each split, glosses only val/test hold, rare training glosses, sentence lengths."""
    names = list(data.classes) + list(data.unseen)
    counts = {s: Counter(int(g) for t in ds.targets for g in t) for s, ds in data.splits.items()}
    checks = []
    train = counts.get("train", Counter())
    rare = sorted((names[g - 1] for g, n in train.items() if n < RARE), key=str)
    if rare:
        checks.append(Check("data", "training glosses", "warn", f"{len(rare)} of {len(train)} glosses occur fewer than "
                            f"{RARE} times in train ({few(rare)}) — the model can hardly learn them; add sentences "
                            f"with them", {"rare": rare}))
    else:
        checks.append(Check("data", "training glosses", "pass", f"{len(train)} glosses, each ≥ {RARE} times in train"))
    if data.unseen:
        where = {g: [s for s, c in counts.items() if s != "train" and (len(data.classes) + 1 + i) in c]
                 for i, g in enumerate(data.unseen)}
        checks.append(Check("data", "glosses only val/test hold", "warn", f"{len(data.unseen)} ({few(data.unseen)}) "
                            f"never occur in train: the model cannot emit them and the WER counts each as an error — "
                            f"move sentences with them into train, or accept the floor they put under the WER",
                            {"unseen": where}))
    else:
        checks.append(Check("data", "glosses only val/test hold", "pass", "none: every val/test gloss occurs in train"))
    stats = []
    for s, ds in data.splits.items():
        glosses = np.asarray([len(t) for t in ds.targets])
        frames = np.asarray(getattr(ds, "lengths", []))
        stats.append(f"{s}: {len(glosses)} sentences, {glosses.min()}–{int(np.median(glosses))}–{glosses.max()} "
                     f"glosses" + (f", {frames.min()}–{int(np.median(frames))}–{frames.max()} frames"
                                   if len(frames) else ""))
    checks.append(Check("data", "sentence lengths (min–median–max)", "info", "; ".join(stats)))
    return checks


def length_preflight(model: torch.nn.Module, data: DataBundle, device: torch.device) -> Check:
    """CTC's need (one output per gloss, a blank between repeats) against the model's output length, every split."""
    from signlip.objectives.ctc import check_lengths

    model = model.to(device)
    transform = data.batch_transform.to(device)
    try:
        for ds in data.splits.values():
            check_lengths(model, ds, transform, device, len(data.classes))
    except SignlipError as exc:
        return Check("training", "output length vs glosses (CTC)", "fail", str(exc))
    return Check("training", "output length vs glosses (CTC)", "pass", "every sentence of every split gets at least "
                 "the output frames its glosses need")
