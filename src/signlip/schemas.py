"""Typed schemas of every config group and command node: names, types and ranges, no defaults.

A schema is a dataclass whose fields are exactly the keys of its config node. Each field's type says what the value
may be; `Annotated[..., Rule(...)]` (or `key(...)`) adds its range. `signlip.config.check_config` walks a composed
config against these and stops at the first wrong key with one line naming it, e.g.

    data.augment.p_hflip=1.5 — it must be a probability in [0, 1]

Defaults are not here: every group's defaults live in its conf/<group>/<option>.yaml (and a library function's own
defaults in its signature). A field is `required` only where the code it feeds has no default (optimizers and
schedules, whose values come from conf/optim and conf/sched alone); other keys may be left out of a plain config.

Groups are picked by their `name` (`data.name`, `model.name`, ...), the clip generators by `synthetic.kind`: a
`Literal` field of a schema is its discriminator. `tests/test_config_schema.py` checks that each schema matches the
signature of what it configures (a model's constructor, a data module, a generator, an augmentation function).
Torch-free: the CLI validates with it before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Rule:
    """Constraints on a value besides its type. Bounds apply to numbers; `length` and `ascending` to lists."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    length: int | None = None  # exact number of items
    min_length: int | None = None
    ascending: bool = False  # [low, high]: low ≤ high
    choices: tuple[str, ...] | None = None  # for str fields of OmegaConf-typed schemas (no Literal there)
    pattern: str | None = None  # regular expression a str must match in full
    must: str | None = None  # what the value must be, in words, when the generated text would not say it well
    required: bool = False  # the key must be present (the code it feeds has no default)


def key(default: Any = MISSING, **rule: Any) -> Any:
    """A dataclass field carrying a `Rule`; `default` only for the OmegaConf-typed trainer settings."""
    metadata = {"rule": Rule(**rule)}
    if default is MISSING:
        return field(metadata=metadata)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


# --- value types -------------------------------------------------------------------------------------------------
Probability = Annotated[float, Rule(ge=0, le=1, must="a probability in [0, 1]")]
Fraction = Annotated[float, Rule(gt=0, lt=1)]  # a share of something, strictly between none and all
DropRate = Annotated[float, Rule(ge=0, lt=1)]
Positive = Annotated[float, Rule(gt=0)]
NonNegative = Annotated[float, Rule(ge=0)]
Count = Annotated[int, Rule(ge=1)]
NonNegativeInt = Annotated[int, Rule(ge=0)]
Seed = Annotated[int, Rule(ge=0, lt=2**63, must="an integer in 0..2⁶³−1")]
SplitSizes = Annotated[list[Count], Rule(length=3, must="a list [train, val, test] of 3 integers ≥ 1")]
FrameSize = Annotated[list[Count], Rule(length=2, must="a list [height, width] of 2 integers ≥ 1")]
Range = Annotated[list[NonNegative], Rule(length=2, ascending=True,
                                          must="a list [low, high] of 2 numbers ≥ 0 with low ≤ high")]
Device = Annotated[str, Rule(pattern=r"auto|cpu|mps|cuda(:\d+)?", must="auto, cpu, cuda, cuda:N or mps")]
BatchSize = Count | Literal["auto"]


# --- data --------------------------------------------------------------------------------------------------------
@dataclass
class Loader:
    """The DataLoader keys of every data group (`signlip.build.LOADER_KEYS`); the rest goes to the data module."""

    batch_size: BatchSize
    eval_batch_size: Count | None
    num_workers: NonNegativeInt
    stratified: bool


# Cross-field checks (a schema's `__checks__`): node → None, or (the keys involved, the value shown, what it must be).
Problem = tuple[tuple[str, ...], Any, str] | None


def _fractions_below_one(node: dict[str, Any]) -> Problem:
    v, t = node.get("val_fraction"), node.get("test_fraction")
    if isinstance(v, (int, float)) and isinstance(t, (int, float)) and v + t >= 1:
        return ("val_fraction", "test_fraction"), round(v + t, 6), "< 1 (something must be left to train on)"
    return None


@dataclass
class HandsSynthetic:
    """`signlip.data.landmarks.synthetic.make_synthetic_hands`."""

    root: str
    n_people: SplitSizes
    per_class_per_person: Count
    seed: Seed


@dataclass
class LandmarkAugmentSettings:
    """`signlip.data.landmarks.augment.augment_landmarks`."""

    p_rotate: Probability
    rotation_degrees: Annotated[float, Rule(ge=0, le=180)]
    p_scale: Probability
    scale_fraction: DropRate
    p_shift: Probability
    shift: NonNegative
    p_noise: Probability
    noise_std: NonNegative


@dataclass
class LandmarksData(Loader):
    """`data=landmarks`: `signlip.data.landmarks.datamodule.build_landmark_data`."""

    __checks__ = (_fractions_below_one,)
    name: Literal["landmarks"]
    manifest: str | None
    root: str | None
    format: DataFormat
    format_options: dict[str, Any] | None
    manifests_dir: str
    synthetic: HandsSynthetic | None
    sequence_length: Annotated[int, Rule(ge=1, le=100_000)]
    normalise: Literal["sequence", "none"]
    augment: LandmarkAugmentSettings | None
    val_fraction: Fraction
    test_fraction: Fraction


@dataclass
class HolisticSynthetic:
    """`synthetic.kind: signs` — `signlip.data.holistic.synthetic.make_synthetic_holistic`."""

    kind: Literal["signs"]
    root: str
    n_people: SplitSizes
    per_class_per_person: Count
    n_classes: Annotated[int, Rule(ge=1, le=25)]
    seed: Seed


@dataclass
class SentenceSynthetic:
    """`synthetic.kind: sentences` — `signlip.data.holistic.synthetic.make_synthetic_sentences`."""

    kind: Literal["sentences"]
    root: str
    n_people: SplitSizes
    sentences_per_person: Count
    n_signs: Annotated[int, Rule(ge=1, le=25)]
    signs_per_sentence: Annotated[list[Count], Rule(length=2, ascending=True,
                                                    must="a list [min, max] of 2 sign counts ≥ 1 with min ≤ max")]
    seed: Seed


@dataclass
class HolisticPrepare:
    """`signlip.data.holistic.datamodule.HolisticVideoPreparer` (MediaPipe extraction, data.format=videos)."""

    models_dir: str
    mirrored_input: bool
    min_confidence: Annotated[float, Rule(ge=0, le=1)]
    face: bool
    pose: bool


@dataclass
class HolisticAugmentSettings:
    """`signlip.data.holistic.augment.HolisticAugment` (+ `enabled`, read by the data module)."""

    enabled: bool
    p_hflip: Probability
    p_rotate: Probability
    max_degrees: Annotated[float, Rule(ge=0, le=180)]
    p_scale: Probability
    scale_fraction: DropRate
    p_shear: Probability
    max_shear: NonNegative
    p_shift: Probability
    max_shift: NonNegative
    p_resample: Probability
    resample_range: Annotated[list[Positive], Rule(length=2, ascending=True,
                                                   must="a list [low, high] of 2 speed factors > 0 with low ≤ high")]
    p_frame_mask: Probability
    frame_mask_ratio: Annotated[float, Rule(ge=0, le=1)]


# `signlip.data.formats`: manifest/videos = data.raw_manifest (the user's CSV); auto = detected from data.root; the
# rest are adapters (FORMATS; a new one adds its name here), each checked against the task's data module when it runs.
DataFormat = Literal["auto", "manifest", "videos", "gislr", "folders", "wlasl", "lrw", "pose", "phoenix2014"]
PresetName = Literal["hands_lips_nose_eyes", "hands", "hands_pose", "all"]  # signlip.data.holistic.features.PRESETS


@dataclass
class HolisticData(Loader):
    """`data=holistic`: `signlip.data.holistic.datamodule.build_holistic_data`."""

    __checks__ = (_fractions_below_one,)
    name: Literal["holistic"]
    manifest: str | None
    raw_manifest: str | None
    root: str | None
    format: DataFormat
    format_options: dict[str, Any] | None
    limit: Count | None
    write_pose: bool  # also write each prepared array as a .pose file (pose-format's viewers)
    synthetic: HolisticSynthetic | SentenceSynthetic | None
    preset: PresetName | Annotated[list[Annotated[int, Rule(ge=0, le=542)]], Rule(min_length=1)]
    max_len: Annotated[int, Rule(ge=1, le=100_000)]
    long_mode: Literal["resample", "truncate"]
    drop_handless: bool
    on_handless: Literal["error", "skip"]
    augment: HolisticAugmentSettings | None
    cache_dir: str
    manifests_dir: str
    prepare: HolisticPrepare | None
    workers: Count
    val_fraction: Fraction
    test_fraction: Fraction


@dataclass
class LipSynthetic:
    """`synthetic.kind: lip` — `signlip.data.clips.synthetic_lip.make_synthetic_lip`."""

    kind: Literal["lip"]
    root: str
    n_people: SplitSizes
    per_class_per_person: Count
    n_classes: Annotated[int, Rule(ge=2, le=24)]
    seed: Seed
    frame_size: FrameSize
    fps: Positive
    n_frames: Annotated[int, Rule(ge=8)]
    ext: Annotated[str, Rule(pattern=r"\.\w+", must="a file suffix such as .mp4")]
    workers: Count


@dataclass
class RgbSynthetic:
    """`synthetic.kind: rgb` — `signlip.data.clips.synthetic_rgb.make_synthetic_rgb`."""

    kind: Literal["rgb"]
    root: str
    n_people: SplitSizes
    per_class_per_person: Count
    n_classes: Annotated[int, Rule(ge=2, le=6)]
    seed: Seed
    frame_size: FrameSize
    n_frames: Count


@dataclass
class LipSentenceSynthetic:
    """`synthetic.kind: lip_sentences` — `signlip.data.clips.synthetic_lip.make_synthetic_lip_sentences`."""

    kind: Literal["lip_sentences"]
    root: str
    n_people: SplitSizes
    sentences_per_person: Count
    n_words: Annotated[int, Rule(ge=2, le=24)]
    words_per_sentence: Annotated[list[Count], Rule(length=2, ascending=True,
                                                    must="a list [min, max] of 2 word counts ≥ 1 with min ≤ max")]
    frames_per_word: Annotated[int, Rule(ge=8)]
    frame_size: FrameSize
    fps: Positive
    seed: Seed


@dataclass
class RgbSentenceSynthetic:
    """`synthetic.kind: rgb_sentences` — `signlip.data.clips.synthetic_rgb.make_synthetic_rgb_sentences`."""

    kind: Literal["rgb_sentences"]
    root: str
    n_signs: Annotated[int, Rule(ge=1, le=6)]
    n_people: SplitSizes
    sentences_per_person: Count
    signs_per_sentence: Annotated[list[Count], Rule(length=2, ascending=True,
                                                    must="a list [min, max] of 2 sign counts ≥ 1 with min ≤ max")]
    frames_per_sign: Annotated[int, Rule(ge=4)]
    transition_frames: Annotated[list[NonNegativeInt], Rule(length=2, ascending=True,
                                                            must="a list [min, max] of 2 frame counts ≥ 0")]
    frame_size: FrameSize
    seed: Seed


@dataclass
class ClipPrepare:
    """`signlip.data.clips.datamodule.prepare_clips`'s per-video settings (`VideoClipPreparer`)."""

    fps: Positive
    n_frames: Count | None  # None: every frame (whole sentences, continuous recognition)
    size: FrameSize
    gray: bool
    roi: Literal["auto", "mediapipe", "none", "box"]
    margin: NonNegative
    smoothing: DropRate
    models_dir: str
    face_model: str
    min_decoded_fraction: Probability  # share of the container's frames that must decode (else: truncated)


Jitter = Annotated[float, Rule(ge=0, le=1)] | Range  # c → factor U(1 − c, 1 + c), or [low, high] factors


@dataclass
class ResizedCrop:
    scale: Annotated[list[Annotated[float, Rule(gt=0, le=1)]],
                     Rule(length=2, ascending=True, must="a list [low, high] of 2 area fractions in (0, 1]")]
    ratio: Annotated[list[Positive], Rule(length=2, ascending=True,
                                          must="a list [low, high] of 2 aspect ratios > 0 with low ≤ high")]


@dataclass
class ClipAugmentSettings:
    """`signlip.data.clips.augment.augment_clips`."""

    p_hflip: Probability
    brightness: Jitter
    p_brightness: Probability
    contrast: Jitter
    p_contrast: Probability
    saturation: Jitter
    p_saturation: Probability
    resized_crop: ResizedCrop | None
    p_resized_crop: Probability
    noise_std: NonNegative


@dataclass
class ClipsData(Loader):
    """`data=clips_lip` and `data=clips_rgb`: `signlip.data.clips.datamodule.build_clip_data`."""

    __checks__ = (_fractions_below_one,)
    name: Literal["clips"]
    manifest: str | None
    raw_manifest: str | None
    root: str | None
    format: DataFormat
    format_options: dict[str, Any] | None
    synthetic: LipSynthetic | LipSentenceSynthetic | RgbSynthetic | RgbSentenceSynthetic | None
    cache_dir: str
    manifests_dir: str
    prepare: ClipPrepare
    augment: ClipAugmentSettings | None
    mean: Annotated[list[float], Rule(min_length=1)] | None
    std: Annotated[list[Positive], Rule(min_length=1)] | None
    preload_limit_mb: NonNegativeInt
    workers: Count
    val_fraction: Fraction
    test_fraction: Fraction
    word_boundary: bool  # LRW's word duration as a model input (the lip models' "word boundary" variant)


# --- model: each class's constructor, less what the data decides (DATA_IMPLIED) ----------------------------------
# DataBundle.model_kwargs: never configured
DATA_IMPLIED = ("num_classes", "input_size", "input_dim", "in_channels", "word_boundary")


def _heads_divide_dim(node: dict[str, Any]) -> Problem:
    dim, heads = node.get("dim"), node.get("num_heads")
    if isinstance(dim, int) and isinstance(heads, int) and heads > 0 and dim % heads:
        return ("dim",), dim, f"a multiple of model.num_heads={heads}"
    return None


def _same_length(a: str, b: str):
    def check(node: dict[str, Any]) -> Problem:
        if isinstance(node.get(a), list) and isinstance(node.get(b), list) and len(node[a]) != len(node[b]):
            return (b,), node[b], f"a list as long as {a} ({len(node[a])} items)"
        return None

    return check


@dataclass
class LandmarkGRUModel:
    """`model=landmark_gru|landmark_gru_light|landmark_gru_deep`: `signlip.models.landmark_gru.LandmarkGRU`."""

    name: Literal["landmark_gru"]
    cell: Literal["gru", "lstm"]
    hidden_size: Count
    num_layers: Count
    bidirectional: bool
    dropout: DropRate
    dense_size: Count
    output: Literal["class", "sequence"]  # sequence: per-frame outputs for CTC (continuous recognition)
    frame_stack: Count  # temporal stride: frames stacked per recurrent step


AdaptiveDrop = Annotated[tuple[DropRate, DropRate, NonNegativeInt],
                         Rule(must="a list [p_start, p_end, warm-up epochs]: 2 rates in [0, 1) and an integer ≥ 0")]


@dataclass
class ASLTCNTransformerModel:
    """`model=asl_tcn_transformer`: `signlip.models.asl_tcn_transformer.ASLTCNTransformer`."""

    __checks__ = (_heads_divide_dim, _same_length("tcn_dilations", "tcn_drop_rates"))
    name: Literal["asl_tcn_transformer"]
    dim: Count
    kernel_size: Count
    tcn_dilations: Annotated[list[Count], Rule(min_length=1)]
    tcn_drop_rates: list[DropRate]
    conv_drop_rates: list[DropRate]
    drop_path: DropRate
    lstm_layers: Count
    lstm_drop: DropRate
    num_heads: Count
    attn_drop: DropRate
    transformer_blocks: NonNegativeInt
    transformer_expand: Count
    pool_heads: Count
    max_positions: Count
    stem_dropout: AdaptiveDrop
    top_dropout: AdaptiveDrop
    late_dropout: DropRate
    late_dropout_step: NonNegativeInt
    bn_momentum: Annotated[float, Rule(ge=0, le=1)]


@dataclass
class LipCNNLSTMModel:
    """`model=lip_cnnlstm`: `signlip.models.lip.LipCNNLSTM`."""

    name: Literal["lip_cnnlstm"]
    channels: Annotated[list[Count], Rule(min_length=1)]
    pooled_size: FrameSize
    hidden_size: Count
    dense_size: Count
    dropout: DropRate
    output: Literal["class", "sequence"]  # sequence: per-frame outputs (phrases as word sequences, CTC)


@dataclass
class LipCNN3DModel:
    """`model=lip_cnn3d`: `signlip.models.lip.LipCNN3D`."""

    __checks__ = (_same_length("channels", "kernels"),)
    name: Literal["lip_cnn3d"]
    channels: Annotated[list[Count], Rule(min_length=1)]
    kernels: list[Count]
    dropouts: Annotated[list[DropRate], Rule(length=3)]


@dataclass
class I3DModel:
    """`model=i3d`: `signlip.models.i3d.I3D`."""

    name: Literal["i3d"]
    dropout: DropRate
    pretrained: Literal["imagenet_inflated"] | None
    output: Literal["class", "sequence"]  # sequence: per-time-step outputs for CTC, temporal stride 8


@dataclass
class MobileNetV3Model:
    """`model=mobilenetv3`: `signlip.models.mobilenetv3.MobileNetV3Student`."""

    name: Literal["mobilenetv3"]
    variant: Literal["large", "small"]
    temporal_head: Literal["avg", "conv1d", "gru", "bilstm", "tconv_bilstm"]
    hidden: Count
    dropout: DropRate
    pretrained: str | None  # imagenet, or a signlip mobilenetv3 checkpoint (.pt): its backbone
    bn_momentum: Annotated[float, Rule(ge=0, le=1)]
    output: Literal["class", "sequence"]  # sequence: per-step outputs for CTC (stride 1; 4 for tconv_bilstm)
    input_scale: Annotated[float, Rule(gt=0)]


# --- objective, evaluator ----------------------------------------------------------------------------------------
@dataclass
class ClassifyConfig:
    """`objective=classify`: `signlip.objectives.classification.ClassifyObjective`."""

    name: Literal["classify"]
    label_smoothing: DropRate
    focal_gamma: NonNegative
    class_weights: None | Literal["balanced"] | Annotated[list[NonNegative], Rule(min_length=1)]


@dataclass
class ChanceAlarmSettings:
    """`signlip.evaluators.classification.ChanceAlarm` (less num_classes, the data's)."""

    enabled: bool
    after_epochs: NonNegativeInt
    margin: Annotated[float, Rule(ge=0, le=1)]
    collapse_fraction: Annotated[float, Rule(gt=0, le=1)]


@dataclass
class ClassificationConfig:
    """`evaluator=classification`: `signlip.evaluators.classification.ClassificationEvaluator`."""

    name: Literal["classification"]
    top_k: list[Count]
    alarm: ChanceAlarmSettings | None


@dataclass
class CTCConfig:
    """`objective=ctc`: `signlip.objectives.ctc.CTCObjective`."""

    name: Literal["ctc"]
    zero_infinity: bool


@dataclass
class SequenceDistillConfig:
    """`objective=sequence_distill`: `signlip.objectives.sequence_distillation.SequenceDistillObjective`."""

    name: Literal["sequence_distill"]
    teacher: str | None  # checkpoint path; the objective refuses None with the fix
    temperature: Positive
    alpha: Annotated[float, Rule(ge=0, le=1)]
    zero_infinity: bool
    cache_teacher: bool


@dataclass
class BlankAlarmSettings:
    """`signlip.evaluators.wer.BlankAlarm`."""

    enabled: bool
    after_epochs: NonNegativeInt
    empty_fraction: Annotated[float, Rule(gt=0, le=1)]
    progress: Annotated[float, Rule(ge=0, le=1)]


@dataclass
class WerConfig:
    """`evaluator=wer`: `signlip.evaluators.wer.WerEvaluator`."""

    name: Literal["wer"]
    alarm: BlankAlarmSettings | None
    bootstrap: Count
    decoder: Literal["greedy", "beam"]  # beam: CTC prefix beam search (signlip[ctc])
    beam_width: Annotated[int, Rule(ge=1, le=10_000)]


# --- optim, sched: every key required (their defaults live only in conf/optim and conf/sched) --------------------
Betas = Annotated[tuple[DropRate, DropRate], Rule(required=True, must="a list [beta1, beta2] of 2 numbers in [0, 1)")]
Lr = Annotated[float, Rule(gt=0, required=True)]
WeightDecay = Annotated[float, Rule(ge=0, required=True)]


@dataclass
class AdamOptim:
    """`optim=adam`: `signlip.optim.adam`."""

    name: Literal["adam"]
    lr: Lr
    weight_decay: WeightDecay
    betas: Betas


@dataclass
class AdamWOptim:
    """`optim=adamw`: `signlip.optim.adamw`."""

    name: Literal["adamw"]
    lr: Lr
    weight_decay: WeightDecay
    betas: Betas


def _nesterov_needs_momentum(node: dict[str, Any]) -> Problem:
    if node.get("nesterov") is True and node.get("momentum") == 0:
        return ("momentum",), 0, "> 0 with nesterov=true (or set optim.nesterov=false)"
    return None


@dataclass
class SGDOptim:
    """`optim=sgd`: `signlip.optim.sgd`."""

    __checks__ = (_nesterov_needs_momentum,)
    name: Literal["sgd"]
    lr: Lr
    weight_decay: WeightDecay
    momentum: Annotated[float, Rule(ge=0, lt=1, required=True)]
    nesterov: Annotated[bool, Rule(required=True)]


WarmupSteps = Annotated[int, Rule(ge=0, required=True)]
MinLr = Annotated[float, Rule(ge=0, required=True)]
# The metric an epoch-level schedule (plateau) steps on; null: trainer.monitor. Every schedule takes it, so that
# switching sched= on a task that sets it needs no ~sched.monitor.
SchedMonitor = Annotated[str | None, Rule(required=True, must="null or a logged metric such as val/loss")]


@dataclass
class PlateauSched:
    """`sched=plateau`: `signlip.optim.plateau`."""

    name: Literal["plateau"]
    factor: Annotated[float, Rule(gt=0, lt=1, required=True)]
    patience: Annotated[int, Rule(ge=0, required=True)]
    min_lr: MinLr
    warmup_steps: WarmupSteps
    monitor: SchedMonitor


@dataclass
class CosineSched:
    """`sched=cosine`: `signlip.optim.cosine`."""

    name: Literal["cosine"]
    min_lr: MinLr
    warmup_steps: WarmupSteps
    monitor: SchedMonitor


@dataclass
class CosineWarmRestartsSched:
    """`sched=cosine_warm_restarts`: `signlip.optim.cosine_warm_restarts`."""

    name: Literal["cosine_warm_restarts"]
    T_0_epochs: Annotated[float, Rule(gt=0, required=True)]
    T_mult: Annotated[int, Rule(ge=1, required=True)]
    min_lr_ratio: Annotated[float, Rule(ge=0, le=1, required=True)]
    warmup_steps: WarmupSteps
    monitor: SchedMonitor


@dataclass
class StepSched:
    """`sched=step`: `signlip.optim.step`."""

    name: Literal["step"]
    step_epochs: Annotated[float, Rule(gt=0, required=True)]
    gamma: Annotated[float, Rule(gt=0, le=1, required=True)]
    warmup_steps: WarmupSteps
    monitor: SchedMonitor


@dataclass
class OneCycleSched:
    """`sched=onecycle`: `signlip.optim.onecycle`."""

    name: Literal["onecycle"]
    pct_start: Annotated[float, Rule(gt=0, lt=1, required=True)]
    warmup_steps: WarmupSteps
    monitor: SchedMonitor


@dataclass
class NoSched:
    """`sched=none`: a constant learning rate (after the optional warmup)."""

    name: Literal["none"]
    warmup_steps: WarmupSteps
    monitor: SchedMonitor


# --- trainer (typed by OmegaConf too: conf/trainer/default.yaml extends it), logger ------------------------------
@dataclass
class EarlyStoppingSettings:
    enabled: bool = True
    patience: int = key(10, ge=0)
    min_delta: float = key(0.0, ge=0)


@dataclass
class SmallDataSettings:
    """What a small train split changes (`signlip.build.adapt_to_small_data`); printed in one line when it does."""

    enabled: bool = True
    min_updates_per_epoch: int = key(8, ge=1)  # cap data.batch_size so an epoch makes at least this many updates ...
    min_batch_size: int = key(8, ge=1)  # ... but never cap below this batch
    min_updates: int = key(200, ge=0)  # early stopping may stop, and a plateau schedule decay, only after this many


@dataclass
class TrainerSettings:
    max_epochs: int = key(100, ge=1)
    device: str = key("auto", pattern=r"auto|cpu|mps|cuda(:\d+)?", must="auto, cpu, cuda, cuda:N or mps")
    precision: str = key("32", choices=("32", "bf16", "16"))  # 16: fp16 with GradScaler
    compile: bool = False  # torch.compile the model
    channels_last: bool = False  # conv models: channels-last memory format
    grad_accum_steps: int = key(1, ge=1)
    grad_clip_norm: float = key(1.0, ge=0, must="a number ≥ 0 (0 = off)")
    monitor: str | None = None  # metric for best checkpoint, early stopping and plateau schedules; None: evaluator's
    mode: str | None = key(None, choices=("max", "min"))  # None: the evaluator's for its monitor, min for a *loss
    early_stopping: EarlyStoppingSettings = field(default_factory=EarlyStoppingSettings)
    small_data: SmallDataSettings = field(default_factory=SmallDataSettings)
    resume: str | None = None  # path to a checkpoint, or "auto" for the newest last.pt of this task
    checkpoint_dir: str | None = None  # default: <run folder>/checkpoints
    nan_policy: str = key("stop", choices=("stop", "skip"))  # skip: skip the batch and count it
    deterministic: bool = False  # torch.use_deterministic_algorithms
    limit_train_batches: int | None = key(None, ge=1)  # cap batches per epoch (quick checks)
    evaluate_test: bool = True  # after training, report the best model on the test split (never used to select)
    stop_on_alarm: bool = False  # stop the run when the evaluator's alarm (e.g. stuck at chance) fires


@dataclass
class LoggerSettings:
    tensorboard: bool
    progress: bool


# --- command nodes -----------------------------------------------------------------------------------------------
@dataclass
class DistillSettings:
    """`signlip distill`: `signlip.objectives.distill_run.distill_objective_factory`."""

    temperature: Positive
    alpha: Annotated[float, Rule(ge=0, le=1)]
    cache_teacher: bool


@dataclass
class TeacherSettings:
    task: str | None
    ckpt: str | None


@dataclass
class StudentSettings:
    task: str | None
    init: str | None


@dataclass
class PrepareSettings:
    """`signlip prepare`: the runner's processes, whether to rebuild the cache, and sharding across machines."""

    workers: Count
    overwrite: bool
    shard: Annotated[str, Rule(pattern=r"[1-9]\d*/[1-9]\d*", must="K/N: shard K of N, 1 ≤ K ≤ N (e.g. 2/8)")] | None
    merge: bool


@dataclass
class EvaluateData:
    manifest: str | None


@dataclass
class EvaluateConfig:
    """conf/evaluate.yaml: `signlip evaluate ckpt=PATH [split=val] [out=DIR] [data.manifest=CSV]`."""

    ckpt: Annotated[str, Rule(required=True, must="the path of a checkpoint (ckpt=outputs/<task>/<run>/checkpoints/"
                                                  "best.pt)")]
    split: Literal["test", "val", "train"]
    out: str | None
    device: Device
    batch_size: Count | None
    data: EvaluateData
    evaluator: dict[str, Any] | None  # replaces the checkpoint evaluator's settings (checked by its constructor)


Checkpoint = Annotated[str, Rule(required=True, must="the path of a checkpoint (ckpt=outputs/<task>/<run>/"
                                                  "checkpoints/best.pt)")]


@dataclass
class ExportConfig:
    """conf/export.yaml: `signlip export ckpt=PATH [format=onnx] [int8=true] [out=DIR]`
    (`signlip.deploy.onnx_export.export_checkpoint`)."""

    ckpt: Checkpoint
    format: Literal["onnx"]
    int8: bool
    int8_mode: Literal["auto", "dynamic", "static"]
    out: str | None
    tolerance: Positive
    calibration_batches: Count
    batch_size: Count | None
    data: EvaluateData


@dataclass
class BenchmarkConfig:
    """conf/benchmark.yaml: `signlip benchmark ckpt=PATH [threads=[1,2]] [batch_size=32] [out=DIR]`
    (`signlip.deploy.benchmark.benchmark_checkpoint`)."""

    ckpt: Checkpoint
    out: str | None
    threads: Annotated[list[Count], Rule(min_length=1, must="a list of thread counts ≥ 1, e.g. [1,2]")]
    batch_size: Count
    runs: Count
    warmup: NonNegativeInt
    int8_mode: Literal["auto", "dynamic", "static"]
    calibration_batches: Count
    live_input: str | None
    data: EvaluateData


@dataclass
class PredictConfig:
    """conf/predict.yaml: `signlip predict ckpt=PATH input=FILE|DIR|CSV|camera:N [out=…] [stream=true]`."""

    ckpt: Annotated[str, Rule(required=True, must="the path of a checkpoint (ckpt=outputs/<task>/<run>/checkpoints/"
                                                  "best.pt)")]
    input: Annotated[str, Rule(required=True, must="a video or landmark file, a folder, a manifest CSV or camera:N")]
    out: str | None
    top_k: Count
    batch_size: Count
    device: Device
    models_dir: str | None
    stream: bool
    window: Count | None
    hop: Count | None
    smoothing: Annotated[float, Rule(ge=0, lt=1)]
    max_frames: Count | None


# The schema of each command config that is not a training run (train, distill, prepare, doctor: RunConfig).
COMMAND_SCHEMAS: dict[str, type] = {"evaluate": EvaluateConfig, "predict": PredictConfig, "export": ExportConfig,
                                     "benchmark": BenchmarkConfig}


# --- the groups, by name -----------------------------------------------------------------------------------------
GROUPS: dict[str, tuple[type, ...]] = {
    "data": (LandmarksData, HolisticData, ClipsData),
    "model": (LandmarkGRUModel, ASLTCNTransformerModel, LipCNNLSTMModel, LipCNN3DModel, I3DModel, MobileNetV3Model),
    "objective": (ClassifyConfig, CTCConfig, SequenceDistillConfig),
    "evaluator": (ClassificationConfig, WerConfig),
    "optim": (AdamOptim, AdamWOptim, SGDOptim),
    "sched": (PlateauSched, CosineSched, CosineWarmRestartsSched, StepSched, OneCycleSched, NoSched),
}


@dataclass(frozen=True)
class Group:
    """Marks a field of `RunConfig` as a config group: its schema is picked from `GROUPS` by the node's `name`."""

    name: str


@dataclass
class RunConfig:
    """A composed train / distill / prepare / doctor config: the groups plus each command's own node.

    A group whose `name` has no schema in `GROUPS` (an entry registered elsewhere, e.g. by a test) is checked by its
    constructor's signature alone when it is built."""

    seed: Seed
    task_name: str
    data: Annotated[dict, Group("data"), Rule(required=True)]
    model: Annotated[dict, Group("model"), Rule(required=True)]
    objective: Annotated[dict, Group("objective"), Rule(required=True)]
    evaluator: Annotated[dict, Group("evaluator"), Rule(required=True)]
    optim: Annotated[dict, Group("optim"), Rule(required=True)]
    sched: Annotated[dict, Group("sched"), Rule(required=True)]
    trainer: TrainerSettings
    logger: LoggerSettings
    distill: DistillSettings  # signlip distill
    teacher: TeacherSettings
    student: StudentSettings
    prepare: PrepareSettings  # signlip prepare
    doctor: dict  # signlip doctor: its own defaults and checks (signlip.doctor)
