"""ROSA's configuration (DESIGN §7, the ``rosa`` config group), without torch.

- :class:`ModelConfig`: the architecture of :class:`~nvos.rosa.model.RosaModel`.
- :class:`TrainConfig`: ``rosa.train``, optimisation and bookkeeping.
- :class:`RosaConfig`: one resolved ablation variant of the ``rosa`` group (model, loss, data
  sampling and ``train``); :func:`resolve_variant` merges ``rosa.variants[name]`` into the group
  (once: the rules pass the resolved variant, :meth:`RosaConfig.to_dict`, down as params).

This module imports neither torch nor any module that does, so the workflow's rule files
(``workflow/rules/rosa.smk``) can build the DAG without loading torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from nvos.config import ConfigError, check_limits, group_schema, merge, typed
from nvos.rosa.sweep import sweep_overrides

__all__ = [
    "INPUT_NORMS",
    "MIN_VAL_CLIPS",
    "RPA_REDUCTIONS",
    "TRAIN_SPLIT",
    "VAL_SPLIT",
    "ModelConfig",
    "RosaConfig",
    "TrainConfig",
    "resolve_variant",
]

#: The split ROSA trains on, and the split whose VNA loss selects its checkpoint.
TRAIN_SPLIT, VAL_SPLIT = "train", "val"

#: Clips the validation split needs for its VNA loss to compare checkpoints: VNA contrasts each
#: clip with the others of its batch, so with one clip it is always 0.
MIN_VAL_CLIPS = 2

#: Normalisations of the frozen input embeddings (see :mod:`nvos.rosa.model`; the schema's list).
INPUT_NORMS = tuple(group_schema(("rosa",))["properties"]["input_norm"]["enum"])

#: Normalisations of L_RPA within a clip (see :mod:`nvos.rosa.losses`; the schema's list).
RPA_REDUCTIONS = tuple(group_schema(("rosa",))["properties"]["rpa_reduction"]["enum"])


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`~nvos.rosa.model.RosaModel` (the ``rosa`` config group's model keys).

    Attributes:
        feature_dim: D, the size of the cached frozen CLIP embeddings.
        dim: E, the size of the joint region–phrase space (also the context transformer's width).
        context_layers: transformer layers of the region context module (0 = projection only).
        context_heads: attention heads of each layer (must divide ``dim``).
        dropout: dropout inside the context transformer.
        use_context: phrase branch sees ``[context ; plain]`` (True) or only ``plain`` (False).
        tau: the temperature τ (initial value when learned).
        learn_tau: learn τ (as log τ) instead of keeping it fixed.
        time_frequencies: sinusoidal frequencies of the frame-time embedding.
        input_norm: normalisation of the frozen input embeddings, one of :data:`INPUT_NORMS`
            (see :mod:`nvos.rosa.model`).
        context_dropout: chance, per phrase and training step, that the phrase branch sees a
            zero context half (only ``plain``): keeps it from leaning on the narration context,
            which identifies a training clip by itself. No effect at inference.
    """

    feature_dim: int
    dim: int = 256
    context_layers: int = 2
    context_heads: int = 4
    dropout: float = 0.0
    use_context: bool = True
    tau: float = 0.07
    learn_tau: bool = False
    time_frequencies: int = 8
    tau_min: float = 0.01
    tau_max: float = 1.0
    input_norm: str = "none"
    context_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.feature_dim <= 0 or self.dim <= 0:
            raise ValueError(
                f"feature_dim and dim must be positive, got {self.feature_dim}/{self.dim}"
            )
        if self.context_layers > 0 and self.dim % self.context_heads != 0:
            raise ValueError(
                f"rosa.context_heads={self.context_heads} must divide rosa.dim={self.dim}"
            )
        if not 0.0 <= self.context_dropout < 1.0:
            raise ValueError(f"rosa.context_dropout={self.context_dropout} outside [0, 1)")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(
                f"rosa.input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}"
            )
        if not self.tau_min <= self.tau <= self.tau_max:
            raise ValueError(f"rosa.tau={self.tau} outside [{self.tau_min}, {self.tau_max}]")


@dataclass(frozen=True)
class TrainConfig:
    """``rosa.train``: optimisation and bookkeeping (meanings, defaults and limits:
    ``config/schema.yaml``; the defaults here equal the schema's, for configs built in code).

    ``batch_size`` is the *global* batch (clips per step over all processes; divisible by
    ``gpus``). ``steps`` (if set) overrides ``epochs``. ``checkpoint_every``/``val_every``/
    ``log_every`` count steps (0 = only at the end). ``restarts`` > 1 trains that many
    initialisations (seeds ``seed``, ``seed + 1``, ...) and keeps the one with the lowest
    validation VNA (:func:`nvos.rosa.restarts.train_restarts`).
    """

    GROUP: ClassVar[tuple[str, ...]] = ("rosa", "train")

    batch_size: int = 32
    epochs: int = 30
    steps: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    val_every: int = 50
    log_every: int = 10
    seed: int = 0
    gpus: int = 1
    bf16: bool = True
    num_workers: int = 0
    restarts: int = 1

    def __post_init__(self) -> None:
        check_limits(self)
        if self.batch_size % self.gpus != 0:
            raise ConfigError(
                f"rosa.train.batch_size={self.batch_size} is not divisible by "
                f"rosa.train.gpus={self.gpus}"
            )


@dataclass(frozen=True)
class RosaConfig:
    """The ``rosa`` config group, one variant resolved (see :func:`resolve_variant`); meanings,
    defaults and limits: ``config/schema.yaml`` (the defaults here equal the schema's).

    ``frames_per_clip`` and ``max_regions`` shape the training items (data side); the others
    shape the model (:class:`ModelConfig`) and the loss.
    """

    GROUP: ClassVar[tuple[str, ...]] = ("rosa",)

    frames_per_clip: int = 8
    max_regions: int = 20
    dim: int = 256
    context_layers: int = 2
    context_heads: int = 4
    dropout: float = 0.0
    use_context: bool = True
    tau: float = 0.07
    learn_tau: bool = False
    lambda_vna: float = 1.0
    lambda_rpa: float = 1.0
    rpa_reduction: str = "mean"
    input_norm: str = "none"
    context_dropout: float = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_limits(self)
        if self.lambda_vna == 0 and self.lambda_rpa == 0:
            raise ConfigError("rosa.lambda_vna and rosa.lambda_rpa are both 0: nothing to train")

    @classmethod
    def from_mapping(cls, rosa: Mapping[str, Any]) -> RosaConfig:
        """Build from the ``rosa`` group as a mapping (:func:`nvos.config.typed`; ``variants``
        is not part of it, see :func:`resolve_variant`)."""
        return typed(rosa, cls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_config(self, feature_dim: int) -> ModelConfig:
        """The model's architecture for embeddings of size ``feature_dim``: every
        :class:`ModelConfig` field this group also has (same name) is taken from it."""
        shared = {f.name for f in fields(ModelConfig)} & {f.name for f in fields(self)}
        return ModelConfig(feature_dim=feature_dim, **{k: getattr(self, k) for k in shared})


def resolve_variant(rosa: Mapping[str, Any], variant: str) -> RosaConfig:
    """The config of ablation ``variant``: ``rosa`` with ``rosa.variants[variant]`` merged in.

    E.g. ``variants: {rosa: {}, rosa_noctx: {use_context: false},
    rosa_vna_only: {lambda_rpa: 0.0}, rosa_rpa_only: {lambda_vna: 0.0}}``; overrides may also set
    ``train`` keys (merged key by key). A problem is named under ``rosa.variants.<variant>``.
    A point of ``rosa.sweep`` (``rosa-sw-…``, :mod:`nvos.rosa.sweep`) is the ``rosa`` variant
    with the point's settings, named under ``rosa.sweep.<variant>``.
    """
    variants = rosa.get("variants") or {}
    swept = sweep_overrides(rosa, variant)  # a point of rosa.sweep (nvos.rosa.sweep)
    if variant not in variants and swept is None:
        raise ConfigError(f"rosa.variants has no variant {variant!r} (has {sorted(variants)})")
    overrides = (variants[variant] or {}) if swept is None else swept
    for key in ("variants", "sweep"):
        if key in overrides:
            raise ConfigError(f"rosa.variants.{variant}.{key}: unknown key")
    where = ("rosa", "variants", variant) if swept is None else ("rosa", "sweep", variant)
    base = {k: v for k, v in rosa.items() if k not in ("variants", "sweep")}
    return typed(merge(base, overrides), RosaConfig, where)
