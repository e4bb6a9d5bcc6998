"""Registry of MTA families. Each module holds marker tables; `detect` picks the best match."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.bounces.families.base import Family, Marker
from pipeline.bounces.families.courier import COURIER, OPENSMTPD
from pipeline.bounces.families.domino import DOMINO, NOTES
from pipeline.bounces.families.exchange import EXCHANGE, EXCHANGE2003
from pipeline.bounces.families.exim import EXIM
from pipeline.bounces.families.gateways import (
    ACTIVEHUNTER,
    AMAVIS,
    BARRACUDA,
    MAILFOUNDRY,
    MAILMARSHAL,
    MCAFEE,
    MESSAGELABS,
    MFILTER,
    MIMECAST,
    MXLOGIC,
    SURFCONTROL,
    TRENDMICRO,
)
from pipeline.bounces.families.gmail import GMAIL
from pipeline.bounces.families.outlook import OUTLOOK
from pipeline.bounces.families.postfix import POSTFIX, ZIMBRA
from pipeline.bounces.families.providers import (
    APACHEJAMES,
    DRAGONFLY,
    FACEBOOK,
    GMX,
    GOOGLEGROUPS,
    JAPANESE_CARRIERS,
    MAILRU,
    MESSAGINGSERVER,
    SENDGRID,
    VERIZON,
    YANDEX,
    ZOHO,
)
from pipeline.bounces.families.qmail import QMAIL
from pipeline.bounces.families.sendmail import SENDMAIL
from pipeline.bounces.families.ses import SES
from pipeline.bounces.families.smallservers import GROUPWISE, IMAIL, KERIO, MAILENABLE, MDAEMON, SMARTERMAIL
from pipeline.bounces.families.yahoo import YAHOO

if TYPE_CHECKING:
    from pipeline.bounces.mime import MailView

# Earlier rows win ties: specific providers before the MTAs they run on.
FAMILIES: tuple[Family, ...] = (
    SES,
    GMAIL,
    YAHOO,
    OUTLOOK,
    EXCHANGE2003,
    EXCHANGE,
    DOMINO,
    NOTES,
    MAILENABLE,
    GROUPWISE,
    MDAEMON,
    KERIO,
    IMAIL,
    SMARTERMAIL,
    MIMECAST,
    MESSAGELABS,
    TRENDMICRO,
    MCAFEE,
    MXLOGIC,
    SURFCONTROL,
    AMAVIS,
    MAILMARSHAL,
    MFILTER,
    ACTIVEHUNTER,
    MAILFOUNDRY,
    BARRACUDA,
    GMX,
    YANDEX,
    MAILRU,
    SENDGRID,
    MESSAGINGSERVER,
    APACHEJAMES,
    DRAGONFLY,
    FACEBOOK,
    GOOGLEGROUPS,
    VERIZON,
    JAPANESE_CARRIERS,
    ZOHO,
    COURIER,
    OPENSMTPD,
    QMAIL,
    EXIM,
    SENDMAIL,
    ZIMBRA,
    POSTFIX,
)

BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}


def detect(view: MailView, body: str) -> tuple[Family | None, int]:
    """The best-scoring family and its score (0 when none matched)."""
    best: Family | None = None
    best_score = 0
    for family in FAMILIES:
        score = family.score(view, body)
        if score > best_score:
            best, best_score = family, score
    return best, best_score


__all__ = ["BY_NAME", "FAMILIES", "Family", "Marker", "detect"]
