"""The assignment rule a CRM sender applies to every recipient of a deployed experiment.

bucket(key) = the first 15 hex digits of md5(key) as an integer, divided by 16^15: uniform in [0, 1), the same in
Python, SQL (DuckDB: `('0x' || left(md5(key), 15))::BIGINT / 16.0^15`, macro `assignment_bucket`) and any
sender's language, and stable for ever (no salt from a library version, unlike hash()).

  holdout    bucket(holdout_salt || ':' || recipient_id) < holdout_share   (global: the same recipients for every
             experiment, and they receive neither version)
  treatment  else bucket(experiment_id || ':' || recipient_id) < treatment_share   (the rewrite)
  control    else (the original)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

ARMS: tuple[str, ...] = ("treatment", "control", "holdout")


def bucket(key: str) -> float:
    return int(hashlib.md5(key.encode()).hexdigest()[:15], 16) / 16**15


@dataclass(frozen=True)
class AssignmentRule:
    treatment_share: float = 0.5
    holdout_share: float = 0.0
    holdout_salt: str = "crmagent-holdout"

    def __post_init__(self) -> None:
        if not 0 < self.treatment_share < 1:
            raise ValueError(f"treatment_share must be in (0, 1), got {self.treatment_share}")
        if not 0 <= self.holdout_share < 1:
            raise ValueError(f"holdout_share must be in [0, 1), got {self.holdout_share}")
        if not self.holdout_salt.strip():
            raise ValueError("holdout_salt must not be empty")

    def arm(self, experiment_id: str, recipient_id: str) -> str:
        if self.holdout_share and bucket(f"{self.holdout_salt}:{recipient_id}") < self.holdout_share:
            return "holdout"
        return "treatment" if bucket(f"{experiment_id}:{recipient_id}") < self.treatment_share else "control"

    def describe(self) -> str:
        holdout = (f"holdout if bucket('{self.holdout_salt}:' || recipient_id) < {self.holdout_share:g}; else "
                   if self.holdout_share else "")
        return (f"{holdout}treatment if bucket(experiment_id || ':' || recipient_id) < {self.treatment_share:g}, "
                "else control; bucket(k) = int(md5(k)[:15], 16) / 16^15")


def experiment_id(month: str, segment: str, aggregate_id: str, title: str, body: str) -> str:
    """Stable for the same deployed text of the same template group; an edited text is a new experiment."""
    return "x" + hashlib.md5("|".join((month, segment, aggregate_id, title, body)).encode()).hexdigest()[:16]


def variant_template_id(template_id: str, experiment: str) -> str:
    """The id the sender logs for the rewrite, so next month's logs tell the two versions apart."""
    return f"{template_id}__{experiment}"
