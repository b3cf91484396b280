"""The audit's settings: which checks run and the threshold of each flag, validated once.

Importing this module is cheap (pydantic only): the CLI's help reads the descriptions. They are
the audit's own model, not a section of the training Config: a run's config (and its hash in
the ledger) only records which audit ran (``data.audit``: quick or full, at the defaults
here). The API's keyword arguments, the CLI's options and ``--set`` use these names.

The thresholds were chosen on planted copies of real photos and on the animals set (see
docs/architecture.md, "The audit room"); each is a setting, so a user can tighten or loosen it.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imgclf.errors import ConfigError, did_you_mean

Check = Literal["labels", "duplicates", "outliers", "balance", "properties"]
CHECKS: tuple[str, ...] = get_args(Check)


class AuditSettings(BaseModel):
    """What the audit checks and where each flag starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: tuple[Check, ...] = Field(
        CHECKS, description=f"The checks to run, comma-separated: {', '.join(CHECKS)}."
    )
    folds: int = Field(
        5, ge=2, le=20, description="Cross-validation folds of the label check's head."
    )
    label_threshold: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Also flag a label whose out-of-sample probability is below this share of "
        "1 / classes.",
    )
    neighbors: int = Field(
        10, ge=1, le=100, description="Nearest neighbours in embedding space searched per image."
    )
    hash_distance: int = Field(
        12,
        ge=0,
        le=32,
        description="Largest flip-invariant pHash distance (bits of 64) of a near-duplicate.",
    )
    min_similarity: float = Field(
        0.6, ge=-1.0, le=1.0, description="Smallest embedding cosine of a near-duplicate."
    )
    min_alignment: float = Field(
        0.92,
        ge=-1.0,
        le=1.0,
        description="Smallest correlation of a near-duplicate's pixels with its pair's, lined "
        "up by the best crop window and mirror.",
    )
    outlier_neighbors: int = Field(
        5,
        ge=1,
        le=100,
        description="Outlier: an image's distance to a class is to its k-th nearest image there.",
    )
    outlier_quantile: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Outlier: farther from every class than this quantile of the images' "
        "distances to a class they do not belong to (higher flags fewer).",
    )
    dark: float = Field(
        0.2, ge=0.0, le=1.0, description="Too dark: 99th-percentile luminance (0-1) below this."
    )
    bright: float = Field(
        0.9, ge=0.0, le=1.0, description="Too bright: 1st-percentile luminance (0-1) above this."
    )
    uniform: float = Field(
        0.02, ge=0.0, le=1.0, description="Almost uniform: luminance std (0-1) below this."
    )
    blurry: float = Field(
        0.1, ge=0.0, description="Blurry: Laplacian std / luminance std below this."
    )
    min_side: int = Field(32, ge=1, description="Tiny: an original side shorter (px) than this.")
    max_aspect: float = Field(
        3.0, ge=1.0, description="Odd aspect ratio: long side / short side above this."
    )
    max_shown: int = Field(48, ge=1, description="Images shown per kind of issue on audit.html.")

    @field_validator("checks", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("checks")
    @classmethod
    def _some_checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one check of {', '.join(CHECKS)}")
        return tuple(dict.fromkeys(value))  # each once, in the order given

    def require_extras(self) -> None:
        """A one-line error naming ``pip install 'imgclf[audit]'`` when a check needs it."""
        from imgclf.models.extras import AUDIT

        if "labels" in self.checks:
            AUDIT.require("The label check of imgclf audit")


def audit_settings(**values: Any) -> AuditSettings:
    """AuditSettings from keyword values (None means the default), or one ConfigError line."""
    given = {key: value for key, value in values.items() if value is not None}
    for key in given:
        if key not in AuditSettings.model_fields:
            raise ConfigError(
                f"Unknown audit setting '{key}'.{did_you_mean(key, AuditSettings.model_fields)} "
                f"Allowed: {', '.join(AuditSettings.model_fields)}."
            )
    try:
        return AuditSettings(**given)
    except ValidationError as exc:
        raise ConfigError("Invalid audit setting: " + _explain(exc)) from None


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the audit's settings, everything else: config keys for reading the data). A key that
    is neither but close to an audit setting is a one-line error naming the setting."""
    ours = {k: v for k, v in options.items() if k in AuditSettings.model_fields}
    for key in options:
        close = did_you_mean(key, AuditSettings.model_fields)
        if key not in ours and close and "." not in key:
            raise ConfigError(f"Unknown audit setting '{key}'.{close}")
    return ours, {k: v for k, v in options.items() if k not in ours}


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"][:1])  # the setting, not the tuple position
        message = err["msg"].removeprefix("Value error, ")
        received = "" if "received" in message else f" (received {err.get('input')!r})"
        parts.append(f"{where}: {message}{received}")
    return "; ".join(parts)
