"""The rubric judge (offline EvaluateAgent): Fig. 5's two 1/3/5 scores and Fig. 6's preference.

It reads the same features as the auditor, so it is *not* independent evidence about rule-engine
rewrites: every report says which backend produced each number. It is symmetric in A and B, so
both-order judging always agrees with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmagent_dagster.agents.auditor import audit_features
from crmagent_dagster.agents.text_features import features


@dataclass(frozen=True)
class RubricScores:
    audience: int
    audience_reason: str
    marketing: int
    marketing_reason: str

    @property
    def total(self) -> int:
        return self.audience + self.marketing


def score(segment: str, title: str, body: str, language: str | None, has_voucher: bool) -> RubricScores:
    f = features(title, body, language)
    error = audit_features(segment, f, has_voucher)
    if error.error_type in ("audience_assumption_error", "irrelevant_offer"):
        audience, a_reason = 1, error.feedback
    elif error.error_type == "misaligned_tone":
        audience, a_reason = 3, error.feedback
    else:
        audience, a_reason = 5, "Fits what this audience knows about the shop."
    cta = f.has_cta and not f.weak_close
    value = f.concrete_value or not has_voucher
    if cta and value and (f.has_urgency or f.concrete_value):
        marketing, m_reason = 5, "Clear benefit, a direct call to action and a reason to act now."
    elif cta or f.concrete_value:
        marketing = 3
        m_reason = "Has a call to action but no concrete benefit." if cta else "States a benefit but no clear call to action."
    else:
        marketing, m_reason = 1, "No concrete benefit and no clear call to action."
    return RubricScores(audience, a_reason, marketing, m_reason)


def prefer(segment: str, a: tuple[str, str], b: tuple[str, str], language: str | None, has_voucher: bool) -> str:
    """'A', 'B' or 'tie' by total rubric score, then by the finer features; never by position."""
    sa = score(segment, *a, language, has_voucher)
    sb = score(segment, *b, language, has_voucher)
    if sa.total != sb.total:
        return "A" if sa.total > sb.total else "B"
    fa, fb = features(*a, language), features(*b, language)
    ka = (fa.concrete_value, fa.has_cta and not fa.weak_close, fa.has_urgency)
    kb = (fb.concrete_value, fb.has_cta and not fb.weak_close, fb.has_urgency)
    return "tie" if ka == kb else ("A" if ka > kb else "B")
