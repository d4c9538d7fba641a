"""Continuous recognition: gloss targets, the CTC objective and its length pre-flight, WER scoring and the
stuck-at-blank alarm, and a tiny CTC run that must learn (WER well below the most-frequent-sentence baseline)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from signlip.data.glosses import encode, greedy_decode, pad_targets, required_frames, to_text, vocabulary
from signlip.errors import SignlipError
from signlip.evaluators.wer import BlankAlarm, WerEvaluator, bootstrap_interval, sentence_counts, wer_of
from signlip.objectives.ctc import CTCObjective, check_lengths


def test_required_frames_counts_the_blank_between_equal_neighbours():
    assert required_frames([1, 2, 3]) == 3
    assert required_frames([1, 1, 2]) == 4  # A A needs a blank between: A _ A B
    assert required_frames([2, 2, 2]) == 5


def test_vocabulary_encoding_and_unseen_glosses_round_trip():
    vocab = vocabulary(["B A", "C A"])
    assert vocab == ["A", "B", "C"]
    names = vocab + ["Z"]  # a gloss only val/test hold is encoded after the vocabulary
    ids = encode("A Z C", names)
    assert ids.tolist() == [1, 4, 3]
    assert to_text(ids, names) == "A Z C"
    y, lengths = pad_targets([ids, encode("B", names)])
    assert y.tolist() == [[1, 4, 3], [2, 0, 0]] and lengths.tolist() == [3, 1]


def test_greedy_decode_merges_repeats_and_drops_blanks():
    path = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0]])
    log_probs = torch.nn.functional.one_hot(path, 3).float().log()
    assert greedy_decode(log_probs) == [[1, 1, 2]]


def test_wer_counts_agree_with_a_hand_count():
    refs, hyps = ["A B C D", "E F"], ["A X C", ""]
    counts = sentence_counts(refs, hyps)
    # sentence 1: A ok, B→X substituted, C ok, D deleted; sentence 2: both deleted
    assert counts.tolist() == [[2, 1, 1, 0], [0, 0, 2, 0]]
    assert wer_of(counts) == pytest.approx(4 / 6)
    lo, hi = bootstrap_interval(counts, 500)
    assert lo <= 4 / 6 <= hi and hi > lo


class _Bundle:
    """The parts of a DataBundle the WER evaluator reads."""

    def __init__(self, classes, most_frequent_sentence):
        self.classes, self.unseen = classes, []
        self.preprocessing = {"most_frequent_sentence": most_frequent_sentence}


def _one_hot_outputs(paths: list[list[int]], v: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(paths), v + 1).float().clamp(min=1e-6).log()


def test_wer_evaluator_scores_decoded_outputs_and_writes_its_report(tmp_path):
    classes = ["A", "B", "C"]
    ev = WerEvaluator(_Bundle(classes, "A B"), bootstrap=200)
    y, lengths = pad_targets([np.array([1, 2]), np.array([3, 3])])
    batch = {"y": y, "y_lengths": lengths, "index": torch.arange(2)}
    ev.reset()
    ev.update(_one_hot_outputs([[1, 0, 2, 0], [3, 3, 0, 0]], 3), batch)  # "A B" right; "C C" decoded as "C"
    metrics = ev.compute()
    assert metrics["wer"] == pytest.approx(1 / 4)
    assert metrics["ser"] == pytest.approx(0.5)

    class Log:
        def print(self, *a, **k):
            pass

    report = ev.report("test", tmp_path, Log())
    assert report["deletions"] == 1 and report["substitutions"] == 0
    assert report["per_gloss"]["C"] == {"count": 2, "substituted": 0, "deleted": 1, "inserted": 0}
    assert report["baseline_wer"] == pytest.approx(2 / 4)  # "A B" for both: right once, two substitutions for C C
    assert json.loads(Path(report["files"]["json"]).read_text())["wer"] == pytest.approx(0.25)
    rows = list(csv.DictReader(Path(report["files"]["decoded_csv"]).open()))
    assert rows[1]["hypothesis"] == "C"
    assert Path(report["files"]["alignment_png"]).stat().st_size > 1000  # the posteriors over time, per sentence


def test_blank_alarm_fires_on_an_all_blank_model_and_not_on_one_that_emits():
    falling = [3.0, 2.0, 1.5]
    assert BlankAlarm(after_epochs=3).check(3, 1.0, 1.0, falling)  # only blanks while the loss fell
    assert BlankAlarm(after_epochs=3).check(3, 0.4, 0.0, falling) is None  # emits and scores
    assert BlankAlarm(after_epochs=3).check(2, 1.0, 1.0, falling) is None  # too early: CTC starts at blanks
    assert BlankAlarm(after_epochs=3).check(3, 1.0, 1.0, [3.0, 2.9, 2.95]) is None  # the loss did not fall
    # Breaking out: still 95% empty, but an earlier epoch already reached WER 0.93 (the built-in run's epoch 10).
    assert BlankAlarm(after_epochs=3).check(4, 0.98, 0.95, falling, best_wer=0.93) is None


class _Tiny(torch.nn.Module):
    """Per-frame outputs with a temporal stride: T input frames → ⌈T / stride⌉ outputs."""

    def __init__(self, v: int, stride: int):
        super().__init__()
        self.stride, self.lin = stride, torch.nn.Linear(2, v + 1)

    def forward(self, x, mask=None):
        return self.lin(x[:, :: self.stride])

    def output_lengths(self, lengths):
        return (lengths + self.stride - 1) // self.stride


class _Sentences:
    def __init__(self, lengths: list[int], targets: list[list[int]]):
        self.lengths, self.targets = lengths, [np.asarray(t) for t in targets]
        self.paths = [f"sentence_{i}.npy" for i in range(len(lengths))]

    def __len__(self):
        return len(self.lengths)

    def __getitems__(self, idx):
        t = max(self.lengths[i] for i in idx)
        mask = torch.arange(t)[None] < torch.tensor([self.lengths[i] for i in idx])[:, None]
        y, y_lengths = pad_targets([self.targets[i] for i in idx])
        return {"x": torch.randn(len(idx), t, 2), "mask": mask, "y": y, "y_lengths": y_lengths,
                "index": torch.as_tensor(idx)}


def test_length_preflight_names_the_sentence_too_short_for_its_glosses():
    data = _Sentences([40, 12], [[1, 2, 3], [1, 1, 2, 3]])  # the second: 12 frames / stride 4 = 3 < 5 needed
    with pytest.raises(SignlipError, match=r"sentence_1\.npy: the model emits 3 output frame\(s\) for 4 gloss"):
        check_lengths(_Tiny(3, 4), data, lambda b, training: b, torch.device("cpu"))
    check_lengths(_Tiny(3, 1), data, lambda b, training: b, torch.device("cpu"))  # stride 1: 12 frames suffice


def test_ctc_objective_never_returns_inf_for_a_short_batch_and_blanks_padded_frames():
    """A sentence too short for its glosses in a batch (augmentation shortened it, or new data is evaluated; the
    pre-flight refuses such un-augmented training data) is left out of the loss and counted — never inf/NaN."""
    data = _Sentences([40, 12], [[1, 2, 3], [1, 1, 2, 3]])
    batch = data.__getitems__([0, 1])
    out = CTCObjective()(_Tiny(3, 4), batch)  # stride 4: the second sentence gets 3 outputs, needs 5
    assert torch.isfinite(out["loss"]) and float(out["ctc_left_out"]) == 0.5
    alone = CTCObjective()(_Tiny(3, 4), data.__getitems__([0]))
    assert float(alone["ctc_left_out"]) == 0.0
    out = CTCObjective()(_Tiny(3, 1), batch)
    assert torch.isfinite(out["loss"]) and float(out["ctc_left_out"]) == 0.0
    assert greedy_decode(out["outputs"][1:, 12:])[0] == []  # frames past the sentence decode as nothing


def test_vectorised_need_matches_the_per_sentence_rule():
    from signlip.objectives.ctc import needed_frames

    targets = [np.array([1, 1, 2]), np.array([2, 2, 2]), np.array([3])]
    y, lengths = pad_targets(targets)
    valid = torch.arange(y.shape[1])[None] < lengths[:, None]
    assert needed_frames(y, valid).tolist() == [required_frames(t) for t in targets]


def test_ctc_learns_a_tiny_gloss_language_to_a_low_wer():
    """Sentences of 2–4 glosses out of 5, each gloss a noisy fixed pattern held for 6–10 frames, 2 rest frames between
    glosses (as hands move between signs; without them `B B` and a long `B` would be the same input): after 120
    updates the greedy decoding must be far below the most-frequent-sentence baseline (a falling loss alone could
    be a model that emits only blanks)."""
    from signlip.models.landmark_gru import LandmarkGRU

    gen = torch.Generator().manual_seed(0)
    patterns = torch.randn(5, 8, generator=gen) * 2

    def sentences(n: int, seed: int):
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        for _ in range(n):
            glosses = rng.integers(0, 5, rng.integers(2, 5))
            frames = [torch.cat([patterns[g].repeat(int(rng.integers(6, 11)), 1), torch.zeros(2, 8)]) for g in glosses]
            x = torch.cat(frames)
            xs.append(x + 0.5 * torch.randn(x.shape, generator=gen))
            ys.append(glosses + 1)
        t = max(len(x) for x in xs)
        mask = torch.arange(t)[None] < torch.tensor([len(x) for x in xs])[:, None]
        x = torch.stack([torch.cat([x, x.new_zeros(t - len(x), 8)]) for x in xs])
        y, y_lengths = pad_targets(ys)
        return {"x": x, "mask": mask, "y": y, "y_lengths": y_lengths, "index": torch.arange(n)}

    train, test = sentences(64, 1), sentences(32, 2)
    torch.manual_seed(0)
    model = LandmarkGRU(6, input_size=8, hidden_size=32, num_layers=1, bidirectional=True, dropout=0.0,
                        dense_size=32, output="sequence", frame_stack=2)
    objective, opt = CTCObjective(), torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(120):
        out = objective(model, train)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    model.eval()
    names = ["A", "B", "C", "D", "E"]
    refs = [to_text(row[:n].tolist(), names) for row, n in zip(test["y"], test["y_lengths"])]
    with torch.no_grad():
        hyps = [to_text(h, names) for h in greedy_decode(objective(model, test)["outputs"])]
    wer = wer_of(sentence_counts(refs, hyps))
    baseline = wer_of(sentence_counts(refs, [max(set(refs), key=refs.count)] * len(refs)))
    assert baseline > 0.6
    assert wer < 0.15, (wer, list(zip(refs, hyps))[:4])


def test_train_refuses_a_model_too_strided_for_its_sentences_before_any_step(tmp_path):
    """frame_stack 64 leaves ~2 outputs for sentences of 2–3 signs (~40 frames each): CTC could not align them; the
    pre-flight names a sentence and the fix instead of an inf/NaN loss."""
    from conftest import train_in_process

    overrides = ["task=cslr_landmarks", f"data.synthetic.root={tmp_path}/sentences", "data.synthetic.n_people=[2,1,1]",
                 "data.synthetic.sentences_per_person=4", "data.synthetic.n_signs=3",
                 "data.synthetic.signs_per_sentence=[2,3]", "model.frame_stack=64", "trainer.max_epochs=1"]
    with pytest.raises(SignlipError, match=r"sentence_\d+\.npy: the model emits \d output frame\(s\) for \d gloss\(es\)"
                                           r", fewer than the \d+ CTC needs — use a model with less temporal striding"):
        train_in_process(tmp_path / "run", overrides)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_synthetic_sentences_are_deterministic_signer_disjoint_and_in_the_user_format(tmp_path):
    from conftest import read_rows
    from signlip.data.holistic.synthetic import make_synthetic_sentences

    kwargs = {"n_people": (2, 1, 1), "sentences_per_person": 3, "n_signs": 4, "signs_per_sentence": (2, 3)}
    a = make_synthetic_sentences(tmp_path / "a", **kwargs)
    b = make_synthetic_sentences(tmp_path / "b", **kwargs)
    rows = read_rows(a)
    assert list(rows[0]) == ["path", "glosses", "split", "signer"]
    assert all(2 <= len(r["glosses"].split()) <= 3 for r in rows)
    signers = {s: {r["signer"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert [len(v) for v in signers.values()] == [2, 1, 1] and not set.intersection(*signers.values())
    first = np.load(a.parent / rows[0]["path"])
    assert first.shape[1:] == (543, 3) and first.dtype == np.float32
    assert np.array_equal(first, np.load(b.parent / rows[0]["path"]), equal_nan=True)  # same settings, same data


def _doctor(run_dir, overrides):
    from omegaconf import OmegaConf

    from conftest import compose
    from signlip.doctor import run_doctor

    cfg = compose("doctor", ["logger.tensorboard=false", "doctor.overfit.steps=0",
                             *overrides])
    report = run_doctor(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer), run_dir)
    return {c["name"]: c for c in report["checks"]}, report


def test_doctor_checks_sentences_glosses_only_val_test_hold_and_a_model_too_strided(tmp_path):
    """The doctor on gloss sentences: vocabulary and length checks instead of class counts and chance; a gloss only
    test holds is named (WARN), a model whose output is too short for its sentences FAILs before any training."""
    from conftest import read_rows
    from signlip.data.holistic.synthetic import make_synthetic_sentences

    src = make_synthetic_sentences(tmp_path / "s", n_people=(2, 1, 1), sentences_per_person=4, n_signs=3,
                                   signs_per_sentence=(2, 3))
    rows = read_rows(src)
    first_test = next(r for r in rows if r["split"] == "test")
    first_test["glosses"] += " never_trained"
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "path": str(src.parent / r["path"])} for r in rows)
    base = ["task=cslr_landmarks", f"data.manifest={manifest}"]
    checks, report = _doctor(tmp_path / "ok", base)
    assert checks["glosses only val/test hold"]["status"] == "warn"
    assert "never_trained" in checks["glosses only val/test hold"]["detail"]
    assert checks["output length vs glosses (CTC)"]["status"] == "pass"
    assert checks["short run vs chance"]["status"] == "skip" and report["ok"]
    checks, report = _doctor(tmp_path / "strided", [*base, "model.frame_stack=64"])
    assert checks["output length vs glosses (CTC)"]["status"] == "fail" and not report["ok"]
    assert "less temporal striding" in checks["output length vs glosses (CTC)"]["detail"]


def test_sentences_with_a_class_objective_and_classes_with_ctc_are_one_line(tmp_path):
    from conftest import train_in_process
    from signlip.data.holistic.synthetic import make_synthetic_holistic, make_synthetic_sentences

    sentences = make_synthetic_sentences(tmp_path / "s", n_people=(2, 1, 1), sentences_per_person=2, n_signs=3,
                                         signs_per_sentence=(2, 2))
    with pytest.raises(SignlipError, match="holds gloss sentences .* objective=classify scores one class"):
        train_in_process(tmp_path / "a", ["task=asl_tcn_transformer", f"data.manifest={sentences}"])
    signs = make_synthetic_holistic(tmp_path / "h", n_people=(2, 1, 1), per_class_per_person=1, n_classes=3)
    with pytest.raises(SignlipError, match="objective=ctc needs gloss sentences"):
        train_in_process(tmp_path / "b", ["task=cslr_landmarks", f"data.manifest={signs}"])
    with pytest.raises(SignlipError, match="needs per-frame outputs .* model.output=sequence"):
        train_in_process(tmp_path / "c", ["task=cslr_landmarks", f"data.manifest={sentences}", "model.output=class"])


def test_length_buckets_cover_every_sentence_once_and_keep_padding_small():
    from signlip.data.loaders import LengthBucketSampler

    lengths = np.random.default_rng(0).integers(20, 300, 203)
    one = list(LengthBucketSampler(lengths, 16, seed=1))
    assert sorted(i for b in one for i in b) == list(range(203))
    spread = np.mean([np.ptp(lengths[b]) for b in one])
    assert spread < 0.25 * np.ptp(lengths)  # a random batch would span most of the range
    ranks = [list(LengthBucketSampler(lengths, 16, seed=1, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) and set(range(203)) <= {i for r in ranks for b in r for i in b}
    evaluation = list(LengthBucketSampler(lengths, 16, seed=1, shuffle=False))
    assert [i for b in evaluation for i in b] == np.argsort(lengths, kind="stable").tolist()
