"""Registry of MTA families. Each module holds marker tables; `detect` picks the best match."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Family, Marker
from .courier import COURIER, OPENSMTPD
from .domino import DOMINO, NOTES
from .exchange import EXCHANGE, EXCHANGE2003
from .exim import EXIM
from .gateways import (
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
from .gmail import GMAIL
from .outlook import OUTLOOK
from .postfix import POSTFIX, ZIMBRA
from .providers import (
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
)
from .qmail import QMAIL
from .sendmail import SENDMAIL
from .ses import SES
from .smallservers import GROUPWISE, IMAIL, KERIO, MAILENABLE, MDAEMON, SMARTERMAIL
from .yahoo import YAHOO

if TYPE_CHECKING:
    from ..mime import MailView

# Earlier rows win ties: specific providers before the MTAs they run on.
FAMILIES: tuple[Family, ...] = (
    SES, GMAIL, YAHOO, OUTLOOK, EXCHANGE2003, EXCHANGE, DOMINO, NOTES, MAILENABLE, GROUPWISE, MDAEMON,
    KERIO, IMAIL, SMARTERMAIL, MIMECAST, MESSAGELABS, TRENDMICRO, MCAFEE, MXLOGIC, SURFCONTROL, AMAVIS,
    MAILMARSHAL, MFILTER, ACTIVEHUNTER, MAILFOUNDRY, BARRACUDA, GMX, YANDEX, MAILRU, SENDGRID,
    MESSAGINGSERVER, APACHEJAMES, DRAGONFLY, FACEBOOK, GOOGLEGROUPS, VERIZON, JAPANESE_CARRIERS, COURIER,
    OPENSMTPD, QMAIL, EXIM, SENDMAIL, ZIMBRA, POSTFIX,
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
