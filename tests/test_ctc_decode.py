"""CTC decoding: beam search (torchaudio's decoder over flashlight-text) against greedy, checked with probabilities
computed exactly by enumerating every path, and the WER evaluator's `decoder` option."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from signlip import schemas
from signlip.config import validate
from signlip.data import glosses
from signlip.data.glosses import BLANK, beam_decode, greedy_decode, pad_targets
from signlip.errors import SignlipError
from signlip.evaluators.wer import WerEvaluator

REPO = Path(__file__).resolve().parents[1]


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(k for i, k in enumerate(path) if k != BLANK and (i == 0 or path[i - 1] != k))


def sequence_probs(probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """p(glosses | frames) of every gloss sequence, exactly: the sum over all (V+1)^T paths that collapse to it."""
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        p = float(np.prod(probs[np.arange(len(path)), path]))
        out[collapse(path)] = out.get(collapse(path), 0.0) + p
    return out


# Three frames that each favour the blank (0.5) over A (0.4) and B (0.1): the best single path is all blanks, so greedy
# says nothing, but the paths that spell "A" (A__, _A_, __A, AA_, _AA, AAA) add up to far more.
SPREAD = np.array([[0.5, 0.4, 0.1]] * 3)


def test_beam_finds_the_sequence_greedy_misses_and_the_exact_probabilities_agree():
    exact = sequence_probs(SPREAD)
    assert exact[()] == pytest.approx(0.5 ** 3)  # the best path's sequence: 0.125
    assert exact[(1,)] == pytest.approx(3 * 0.4 * 0.25 + 2 * 0.16 * 0.5 + 0.4 ** 3)  # 0.524, by hand
    assert max(exact, key=exact.get) == (1,)
    assert sum(exact.values()) == pytest.approx(1.0)

    log_probs = torch.from_numpy(np.log(SPREAD))[None].float()
    assert greedy_decode(log_probs) == [[]]
    assert beam_decode(log_probs, 8) == [[1]]
    # torch's CTC loss (the objective's) is −log p of the same sum over paths
    loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor([[1]]), torch.tensor([3]),
                                        torch.tensor([1]), blank=BLANK, reduction="none")
    assert math.exp(-float(loss)) == pytest.approx(exact[(1,)], rel=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_a_wide_beam_returns_the_exactly_most_probable_sequence(seed):
    # T=4, V=2: 31 prefixes at most, so a beam of 64 keeps them all and must land on the enumeration's best
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(3, 0.7), size=4)
    exact = sequence_probs(probs)
    best = max(exact, key=exact.get)
    assert beam_decode(torch.from_numpy(np.log(probs))[None].float(), 64) == [list(best)]
    greedy = tuple(greedy_decode(torch.from_numpy(probs)[None])[0])
    assert exact[greedy] <= exact[best]


def _peaked(paths: list[list[int]], v: int, peak: float = 0.97) -> torch.Tensor:
    probs = np.full((len(paths), len(paths[0]), v + 1), (1 - peak) / v)
    for b, path in enumerate(paths):
        probs[b, np.arange(len(path)), path] = peak
    return torch.from_numpy(np.log(probs)).float()


def test_beam_equals_greedy_on_peaked_outputs_including_repeats():
    paths = [[1, 1, 0, 1, 2, 2, 0, 3], [0, 3, 3, 3, 0, 0, 2, 0], [0] * 8, [4, 0, 4, 0, 4, 4, 1, 1]]
    log_probs = _peaked(paths, 4)
    assert greedy_decode(log_probs) == [[1, 1, 2, 3], [3, 2], [], [4, 4, 4, 1]]
    assert beam_decode(log_probs, 10) == greedy_decode(log_probs)


def test_padded_frames_that_are_a_certain_blank_change_nothing():
    pad = torch.full((1, 5, 3), -1e4)  # as the CTC objective writes them: blank 0, every gloss −1e4
    pad[..., BLANK] = 0.0
    peaked, spread = _peaked([[1, 0, 2, 2, 0, 1]], 2), torch.from_numpy(np.log(SPREAD))[None].float()
    for sentence, beam, greedy in ((peaked, [1, 2, 1], [1, 2, 1]), (spread, [1], [])):
        padded = torch.cat([sentence, pad], 1)
        assert beam_decode(sentence, 8) == beam_decode(padded, 8) == [beam]
        assert greedy_decode(sentence) == greedy_decode(padded) == [greedy]
    # a shorter sentence padded into a batch decodes as it does alone
    batch = torch.cat([torch.cat([spread, pad[:, :3]], 1), peaked], 0)
    assert beam_decode(batch, 8) == [[1], [1, 2, 1]]


class _Data:
    """The parts of a DataBundle the WER evaluator reads."""

    def __init__(self, classes):
        self.classes, self.unseen, self.splits = classes, [], {}


def test_the_wer_evaluator_decodes_by_beam_when_asked():
    batch = {"y": pad_targets([np.array([1])])[0], "y_lengths": torch.tensor([1]), "index": torch.arange(1)}
    outputs = torch.from_numpy(np.log(SPREAD))[None].float()
    wers = {}
    for decoder in ("greedy", "beam"):
        ev = WerEvaluator(_Data(["A", "B"]), bootstrap=10, decoder=decoder, beam_width=4)
        ev.reset()
        ev.update(outputs, batch)
        wers[decoder] = ev.compute()["wer"]
    assert wers == {"greedy": 1.0, "beam": 0.0}  # greedy deletes the "A" that beam search finds


def test_decoder_settings_are_checked():
    node = yaml.safe_load((REPO / "conf/evaluator/wer.yaml").read_text())
    validate(node, schemas.WerConfig, "evaluator")
    assert node["decoder"] == "greedy"  # the default stays the dependency-free one
    with pytest.raises(SignlipError, match="evaluator.decoder"):
        validate({**node, "decoder": "viterbi"}, schemas.WerConfig, "evaluator")
    with pytest.raises(SignlipError, match="evaluator.beam_width"):
        validate({**node, "beam_width": 0}, schemas.WerConfig, "evaluator")
    with pytest.raises(SignlipError, match="greedy or beam"):
        WerEvaluator(_Data(["A"]), decoder="viterbi")


def test_a_missing_decoder_library_is_one_line_naming_the_install(monkeypatch):
    glosses._beam_decoder.cache_clear()
    monkeypatch.setitem(sys.modules, "torchaudio.models.decoder", None)  # import now fails as if not installed
    try:
        with pytest.raises(SignlipError, match=r"signlip\[ctc\].*evaluator.decoder=greedy"):
            WerEvaluator(_Data(["A", "B"]), decoder="beam")
    finally:
        glosses._beam_decoder.cache_clear()
