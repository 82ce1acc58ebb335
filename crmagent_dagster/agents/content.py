"""The statistical ContentAgent: why strong templates beat weak ones in a segment, from feature shares.

The diagnosis is written from numbers (shares of concrete incentives, calls to action, urgency,
emoji, length and audited error types among strong vs weak templates), and each weak template's
problem analysis names its audited error and what it lacks compared with the segment's winners.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

from crmagent_dagster.agents.auditor import AuditResult
from crmagent_dagster.agents.text_features import TextFeatures
from crmagent_dagster.segments import SEGMENT_BY_KEY

# (feature, label for prose): boolean features compared between strong and weak
TRAITS = (
    ("concrete_value", "state a concrete incentive (amount, percentage or free shipping)"),
    ("cta", "end with a clear call to action"),
    ("has_urgency", "give a reason to act now"),
    ("emoji", "use an emoji"),
)


@dataclass(frozen=True)
class Diagnosis:
    analysis: str
    success_patterns: list[str]
    failure_patterns: list[str]
    shares: dict[str, dict[str, float]]  # trait -> {"strong": share, "weak": share}


def _trait(f: TextFeatures, trait: str) -> bool:
    if trait == "cta":
        return f.has_cta and not f.weak_close
    if trait == "emoji":
        return f.emoji_count > 0
    return bool(getattr(f, trait))


def diagnose(segment: str, strong: list[tuple[TextFeatures, AuditResult]],
             weak: list[tuple[TextFeatures, AuditResult]]) -> Diagnosis:
    label = SEGMENT_BY_KEY[segment].label
    if not strong or not weak:
        return Diagnosis(f"Not enough strong and weak templates in {label} to compare.", [], [], {})
    shares: dict[str, dict[str, float]] = {}
    for trait, _ in TRAITS:
        shares[trait] = {"strong": mean(_trait(f, trait) for f, _ in strong),
                         "weak": mean(_trait(f, trait) for f, _ in weak)}
    errors = {e for _, a in strong + weak for e in [a.error_type] if e != "none"}
    for e in sorted(errors):
        shares[f"error:{e}"] = {"strong": mean(a.error_type == e for _, a in strong),
                                "weak": mean(a.error_type == e for _, a in weak)}
    shares["length"] = {"strong": mean(f.length for f, _ in strong), "weak": mean(f.length for f, _ in weak)}

    success, failure, lines = [], [], []
    for trait, prose in TRAITS:
        s, w = shares[trait]["strong"], shares[trait]["weak"]
        if abs(s - w) >= 0.1:
            lines.append(f"{s:.0%} of strong vs {w:.0%} of weak templates {prose}.")
            (success if s > w else failure).append(f"{'Do' if s > w else 'Avoid'}: {prose} ({s:.0%} vs {w:.0%}).")
    for key, share in sorted(shares.items(), key=lambda kv: -(kv[1]["weak"] - kv[1]["strong"])):
        if key.startswith("error:") and share["weak"] - share["strong"] >= 0.05:
            name = key.split(":", 1)[1].replace("_", " ")
            article = "an" if name[0] in "aeiou" else "a"
            lines.append(f"{share['weak']:.0%} of weak vs {share['strong']:.0%} of strong templates show {article} {name}.")
            failure.append(f"Avoid {article} {name} ({share['weak']:.0%} of weak templates).")
    if not lines:
        lines.append("Strong and weak templates differ little in wording; differences may come from offer or timing.")
    analysis = f"{label}: " + " ".join(lines)
    return Diagnosis(analysis, success, failure, shares)


MISSING = {
    "concrete_value": "does not state a concrete incentive",
    "cta": "has no clear call to action",
    "has_urgency": "gives no reason to act now",
}


def problem_reason(segment: str, f: TextFeatures, audit: AuditResult, diagnosis: Diagnosis) -> str:
    """Fig. 3's 'Poor Performance Reason' for one weak template."""
    lacks = [text for trait, text in MISSING.items()
             if not _trait(f, trait) and diagnosis.shares.get(trait, {}).get("strong", 0) >= 0.5]
    reason = audit.feedback if audit.error_type != "none" else "No single wording error stands out."
    if lacks:
        reason += " Unlike most strong templates in this segment, it " + ", ".join(lacks) + "."
    return reason
