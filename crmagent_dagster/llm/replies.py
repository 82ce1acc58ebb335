"""Pydantic models of every agent's reply (Figs. 2-6 and the Appendix D audit sheet).

The LLM layer asks endpoints for these as JSON schema, validates replies against them, and
feeds validation errors back on a retry. Field descriptions double as instructions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Score = Literal[1, 3, 5]
ERROR_TYPES = ("audience_assumption_error", "weak_call_to_action", "vague_incentive", "misaligned_tone",
               "irrelevant_offer")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContentDiagnosis(_Reply):
    """ContentAgent, Fig. 2: why high-performing templates beat low-performing ones in a segment."""

    analysis: str = Field(description="Concise comparative analysis of tone, structure, targeting and incentive design.")
    success_patterns: list[str] = Field(description="Actionable patterns shared by the high performers.")
    failure_patterns: list[str] = Field(description="Actionable patterns shared by the low performers.")


class ProblemAnalysis(_Reply):
    """ContentAgent, Fig. 3's 'Poor Performance Reason' for one weak template."""

    reason: str = Field(description="Why this template performed poorly, in one or two sentences.")


class Rewrite(_Reply):
    """TemplateAgent, Figs. 3-4: the rewritten message (push, SMS, chat message or e-mail)."""

    title: str = Field(description="The push title or e-mail subject; empty for an SMS.")
    body: str = Field(description="The message body, in the channel and length the prompt gives.")


class Scores(_Reply):
    """EvaluateAgent scoring mode, Fig. 5: audience match and marketing effectiveness for A and B."""

    audience_match_score_a: Score
    audience_match_reason_a: str
    marketing_score_a: Score
    marketing_reason_a: str
    audience_match_score_b: Score
    audience_match_reason_b: str
    marketing_score_b: Score
    marketing_reason_b: str


class SingleScores(_Reply):
    """Fig. 5's two criteria for one message: used to check the judge against observed engagement."""

    audience_match_score: Score
    audience_match_reason: str
    marketing_score: Score
    marketing_reason: str


class Preference(_Reply):
    """EvaluateAgent comparison mode, Fig. 6: the more persuasive, better-suited message."""

    preferred: Literal["A", "B"]
    reason: str


class Audit(_Reply):
    """Appendix D: exactly one error type (or none, for a rewrite) with short feedback."""

    error_type: Literal["audience_assumption_error", "weak_call_to_action", "vague_incentive", "misaligned_tone",
                        "irrelevant_offer", "none"]
    feedback: str


class VersionJudgment(_Reply):
    """One version of a message, judged blind."""

    label: str = Field(description="The version's label as shown, e.g. V2.")
    score: int = Field(ge=1, le=10, description="1-10: how good the message is for its purpose and audience.")
    invented: list[str] = Field(description="Terms it states that no other version and no campaign fact supports.")
    dropped: list[str] = Field(description="Terms another version states that this one lacks and the message needs.")
    broken: bool = Field(description="It reads as broken: half sentences, wrong grammar, lost or glued words.")
    note: str


class BlindJudgment(_Reply):
    """The quality bench's blind judge (bench/quality.py): every version of one message, shuffled, scored 1-10."""

    versions: list[VersionJudgment]


REPLY_MODELS: dict[str, type[_Reply]] = {m.__name__: m for m in (ContentDiagnosis, ProblemAnalysis, Rewrite, Scores,
                                                                 SingleScores, Preference, Audit, BlindJudgment)}
