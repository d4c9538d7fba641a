"""Gloss sequences — the targets of continuous recognition (CTC).

A manifest with a `glosses` column (space-separated glosses, e.g. `MORGEN REGEN NORD`) instead of `label` holds one
signed sentence per row. The output vocabulary is the sorted glosses of the train split; id 0 is the CTC blank, so a
gloss `g` is output `1 + vocabulary.index(g)` and the model has `len(vocabulary) + 1` outputs. A gloss that only
val/test contain cannot be learnt but must still count as an error: it is encoded with an id beyond the model's
outputs (`encode`), which the CTC loss leaves out and the WER counts — it can never be emitted.

Batches carry the targets padded: "y" (B, L) int64 (0 past each sentence's end) and "y_lengths" (B,).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from signlip.errors import SignlipError

if TYPE_CHECKING:
    from signlip.data.manifest import Manifest

BLANK = 0
BLANK_NAME = "<blank>"


def split_glosses(text: str) -> list[str]:
    return text.split()


def vocabulary(sentences: list[str]) -> list[str]:
    """The sorted glosses of these sentences (the train split's: the model's outputs 1..V)."""
    return sorted({g for s in sentences for g in split_glosses(s)})


def unseen_glosses(vocab: list[str], sentences: list[str]) -> list[str]:
    """Glosses of `sentences` outside `vocab` (sorted): encoded after it, never emitted by the model."""
    known = set(vocab)
    return sorted({g for s in sentences for g in split_glosses(s)} - known)


def encode(sentence: str, names: list[str]) -> np.ndarray:
    """Gloss ids (1-based; 0 is the blank) of one sentence over `names` = vocabulary + unseen glosses."""
    index = {g: i + 1 for i, g in enumerate(names)}
    return np.asarray([index[g] for g in split_glosses(sentence)], dtype=np.int64)


def pad_targets(targets: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) int64 padded with 0 and (B,) lengths."""
    lengths = torch.as_tensor([len(t) for t in targets], dtype=torch.long)
    out = torch.zeros((len(targets), int(lengths.max()) if len(targets) else 0), dtype=torch.long)
    for i, t in enumerate(targets):
        out[i, : len(t)] = torch.from_numpy(t)
    return out, lengths


def required_frames(target: np.ndarray | list[int]) -> int:
    """The fewest output frames CTC needs for a target: its length plus one blank between each pair of equal
    neighbours (`A A` cannot be emitted in two frames — they would collapse into one `A`)."""
    t = list(target)
    return len(t) + sum(1 for a, b in zip(t, t[1:]) if a == b)


def greedy_decode(log_probs: torch.Tensor) -> list[list[int]]:
    """Best path per sentence of (B, T, V+1) log-probabilities: argmax per frame, repeats merged, blanks dropped.
    Padded frames must already favour the blank (the CTC objective's outputs do)."""
    best = log_probs.argmax(-1).cpu().numpy()
    out = []
    for row in best:
        keep = np.concatenate([[True], row[1:] != row[:-1]]) & (row != BLANK)
        out.append(row[keep].tolist())
    return out


def beam_decode(log_probs: torch.Tensor, beam_width: int = 10) -> list[list[int]]:
    """Most probable gloss sequence per sentence of (B, T, V+1) log-probabilities: a CTC prefix beam search that sums
    the probability of every path giving the same glosses, where greedy follows the single best path (a gloss spread
    over frames that each favour the blank a little is lost by greedy, found here). torchaudio's lexicon-free CTC
    decoder (flashlight-text), no language model; padded frames must favour the blank, as for `greedy_decode`."""
    decoder = _beam_decoder(log_probs.shape[-1], beam_width)
    emissions = log_probs.detach().to("cpu", torch.float32).contiguous()  # the decoder reads raw float32 memory
    return [hyps[0].tokens.tolist() if hyps else [] for hyps in decoder(emissions)]


@functools.lru_cache(maxsize=8)
def _beam_decoder(n_outputs: int, beam_width: int):
    """One decoder per (outputs, width): building it is cheap but not free, and the evaluator decodes every batch."""
    try:
        from torchaudio.models.decoder import ctc_decoder
    except (ImportError, RuntimeError, OSError) as err:  # torchaudio missing, or it lacks flashlight-text
        raise SignlipError(f"beam decoding needs torchaudio's CTC decoder ({err}) — install it with "
                           f"pip install 'signlip[ctc]' (torchaudio>=2.11 and flashlight-text), or set "
                           f"evaluator.decoder=greedy") from None
    # Tokens are only names for the output ids; the blank doubles as flashlight's word separator ("silence"), which
    # lexicon-free decoding needs and glosses have none of. log_add sums paths on merging (a prefix beam search);
    # without it hypotheses keep only their best path, which is greedy's mistake again. Each frame extends the beam by
    # its `beam_width` likeliest outputs only: all 1,201 of a PHOENIX-sized vocabulary made it 50× slower
    # (docs/benchmarks.md) for the same output.
    tokens = [str(i) for i in range(n_outputs)]
    return ctc_decoder(lexicon=None, tokens=tokens, lm=None, nbest=1, beam_size=beam_width, log_add=True,
                       beam_size_token=min(beam_width, n_outputs), blank_token=tokens[BLANK], sil_token=tokens[BLANK])


def to_text(ids: list[int] | np.ndarray, names: list[str]) -> str:
    return " ".join(names[i - 1] for i in ids if 0 < i <= len(names))


# --- a manifest's sentences (every data module of gloss sentences) ---------------------------------------------
def most_frequent_sentence(m: Manifest, preprocessing: dict[str, Any] | None) -> str:
    """The train split's most frequent sentence — the WER baseline, kept in checkpoints for evaluate."""
    from collections import Counter

    if preprocessing and preprocessing.get("most_frequent_sentence") is not None:
        return preprocessing["most_frequent_sentence"]
    return Counter(m.labels[i] for i in m.rows("train")).most_common(1)[0][0] if m.rows("train") else ""


def gloss_vocabulary(m: Manifest) -> list[str]:
    """The train split's vocabulary (`vocabulary`)."""
    return vocabulary([m.labels[i] for i in m.rows("train")])


def unseen_in(m: Manifest, classes: list[str], splits: tuple[str, ...]) -> list[str]:
    """Glosses of val/test outside the vocabulary, listed once (WER counts them; no training can learn them)."""
    if m.target != "glosses":
        return []
    from signlip.run_logger import console

    unseen = unseen_glosses(classes, [m.labels[i] for s in splits if s != "train" for i in m.rows(s)])
    if unseen:
        console.print(f"[yellow]note:[/yellow] {len(unseen)} gloss(es) appear only outside the train split "
                      f"({', '.join(unseen[:8])}{' …' if len(unseen) > 8 else ''}) — the model cannot learn them; "
                      f"the WER counts each as an error", soft_wrap=True)
    return unseen
