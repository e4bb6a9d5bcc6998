"""Bounce mails → BounceReport (docs/architecture.md: "Outcomes and classification", "Edges"):
RFC 3464 DSNs and the text formats of dozens of MTAs, auto-replies and ARF complaints told apart."""

from __future__ import annotations

from pipeline.bounces.parse import parse_bounce
from pipeline.bounces.report import BounceCategory, BouncedRecipient, BounceKind, BounceReport, to_json_dict

__all__ = ["BounceCategory", "BounceKind", "BounceReport", "BouncedRecipient", "parse_bounce", "to_json_dict"]
