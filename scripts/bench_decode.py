"""Benchmark CTC decoding on CPU: sentences/s of greedy (`signlip.data.glosses.greedy_decode`) vs beam search
(`beam_decode`, torchaudio's CTC decoder over flashlight-text) on outputs shaped like a trained model's.

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_decode.py [--sentences 60] [--frames 40] [--vocab 13 1200]
                                                           [--widths 1 10 32] [--repeats 3]

Outputs: per sentence 2–6 glosses drawn from the V glosses, each held for 2–4 of the T' frames with blanks around
them, as (B, T', V+1) log-softmax of logits where the aligned output stands out by a random margin over Gaussian
noise (so some frames are ambiguous, as in a half-trained model); frames past the sentence are the certain blank the
CTC objective writes. Each repetition times greedy then every beam width on the same batch in one process, so that
machine load hits all alike; medians are reported, with the ratio to greedy, the share of sentences where beam and
greedy differ, and the WER of each against the glosses the outputs were built from.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin on a shared machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

from signlip.data.glosses import BLANK, beam_decode, greedy_decode  # noqa: E402
from signlip.evaluators.wer import sentence_counts, wer_of  # noqa: E402


def model_like_outputs(n: int, frames: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, list[list[int]]]:
    """(n, frames, vocab+1) CTC log-probabilities and the gloss ids each sentence was built from."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(vocab + 1, 0.1), size=(n, frames))  # the leftover mass, spread unevenly
    ends, truth = [], []
    for b in range(n):
        path: list[int] = []
        for g in rng.integers(1, vocab + 1, rng.integers(2, 7)).tolist():  # CTC is peaky: a gloss spikes on 1–2 frames
            path += [BLANK] * int(rng.integers(1, 7)) + [g] * (1 + int(rng.random() < 0.3))
        used = min(len(path), frames)
        ends.append(used + int(rng.integers(0, frames - used + 1)))  # output length: the rest of the batch is padding
        path = (path + [BLANK] * frames)[:frames]
        truth.append([g for i, g in enumerate(path) if g != BLANK and (i == 0 or path[i - 1] != g)])
        for t, k in enumerate(path):
            # the aligned output gets 35–100% on a gloss frame (clear spikes and weak ones), 50–100% on a blank one
            # next to a gloss (90–100% far from any), and a rival most of the rest: the blank on a gloss frame, the
            # nearest gloss on a blank one — the doubt where greedy drops a weak gloss that beam search recovers
            near = [g for g in path[max(0, t - 2):t + 3] if g != BLANK]
            rival = BLANK if k != BLANK else (near[0] if near else int(rng.integers(1, vocab + 1)))
            p_k = rng.uniform(0.35, 1.0) if k != BLANK else rng.uniform(0.5 if near else 0.9, 1.0)
            p_rival = (1 - p_k) * rng.uniform(0.5, 0.9)
            rest = probs[b, t].copy()
            rest[[k, rival]] = 0.0
            probs[b, t] = rest / rest.sum() * (1 - p_k - p_rival)
            probs[b, t, k], probs[b, t, rival] = p_k, p_rival
    log_probs = np.log(np.maximum(probs, 1e-30))
    for b, end in enumerate(ends):  # past the output length: the objective's certain blank
        log_probs[b, end:] = -1e4
        log_probs[b, end:, BLANK] = 0.0
    return torch.from_numpy(log_probs).float(), truth


def seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def text(ids: list[int]) -> str:
    return " ".join(f"g{i}" for i in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=60)
    parser.add_argument("--frames", type=int, default=40, help="T': output frames per sentence")
    parser.add_argument("--vocab", type=int, nargs="+", default=[13, 1200], help="V: glosses (outputs are V+1)")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 10, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPU(s), OMP_WAIT_POLICY="
          f"{os.environ['OMP_WAIT_POLICY']}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{args.sentences} sentences × {args.frames} frames, median of {args.repeats}")
    print(f"{'V':>5} {'decoder':>9} {'sentences/s':>12} {'× greedy':>9} {'differs':>8} {'WER':>6}")
    for vocab in args.vocab:
        log_probs, truth = model_like_outputs(args.sentences, args.frames, vocab)
        refs = [text(t) for t in truth]
        for width in args.widths:  # first call builds and caches the decoder: keep it out of the timing
            beam_decode(log_probs[:1], width)
        times: dict[str, list[float]] = {"greedy": [], **{f"beam {w}": [] for w in args.widths}}
        for _ in range(args.repeats):
            times["greedy"].append(seconds(greedy_decode, log_probs))
            for w in args.widths:
                times[f"beam {w}"].append(seconds(beam_decode, log_probs, w))
        greedy = greedy_decode(log_probs)
        decoded = {"greedy": greedy, **{f"beam {w}": beam_decode(log_probs, w) for w in args.widths}}
        base = statistics.median(times["greedy"])
        for name, t in times.items():
            med = statistics.median(t)
            differs = np.mean([a != b for a, b in zip(decoded[name], greedy)])
            wer = wer_of(sentence_counts(refs, [text(h) for h in decoded[name]]))
            print(f"{vocab:>5} {name:>9} {args.sentences / med:>12.0f} {base / med:>9.3f} {differs:>8.1%} {wer:>6.1%}")


if __name__ == "__main__":
    main()
