"""Diagnostic-text patterns per reason (docs/architecture.md: "Outcomes and classification" taxonomy), one row per message family.

Every pattern is a regular expression matched against lower-cased text with runs of
white space squeezed to one space. Tables are data: add a row, not an if.
"""

from __future__ import annotations

import re

PATTERNS: dict[str, tuple[str, ...]] = {
    "mailbox_full": (
        r"mailbox (?:is )?(?:full|over ?quota|quota)",
        r"mailbox.{0,40}(?:exceed(?:s|ed)?|over) .{0,30}(?:quota|limit|size|storage)",
        r"(?:quota|storage) (?:has been |was )?exceeded",
        r"(?:over|exceeds?|exceeded|reached) (?:the |his |her |their |its |disk |mailbox |storage )*quota",
        r"over ?quota|quota ?(?:violation|full|exceed)",
        r"disk quota|maildir quota|insufficient disk space|not (?:sufficient|enough) (?:disk )?space",
        r"no space left on device|user's space has been used up|mailfolder is full|full mailbox",
        r"mailbox size limit exceeded|exceeded storage allocation|user has exceeded quota",
        r"too much mail data|user has too many messages|boite du destinataire pleine",
        r"account is (?:over|full|out of).{0,20}(?:quota|space|storage)",
        r"(?:recipient|user|inbox|account)(?:'s)? (?:mailbox |inbox )?(?:is )?full",
        r"inbox is out of storage|out of storage space|mailbox has exceeded|mail ?box full",
        r"postfach (?:ist )?voll|speicherplatz|casella (?:piena|di posta piena)|buzón lleno|bo[iî]te (?:aux lettres )?pleine",
        r"exceeding receiving limits|as their mailbox is full|recipient overquota",
    ),
    "mesg_too_big": (
        r"message (?:size |length )?(?:is )?too (?:big|large)(?! for this recipient)",
        r"message (?:size|length) exceeds? (?:fixed |the )?(?:maximum|limit|administrative)",
        r"(?:exceeded|exceeds) (?:the )?maximum (?:inbound |incoming )?message size",
        r"size limit|max(?:imum)? message size exceeded|message file too big|line limit exceeded",
        r"message (?:is )?larger than|taille limite du message atteinte|exceeds size limit",
        r"exceeds my databytes limit|message too large for this (?:system|server)",
    ),
    "exceed_limit": (
        r"message header size exceeds limit|message too large for this recipient|recipsizelimit",
        r"exceeded the maximum size the user accepts|message length exceeds administrative limit",
    ),
    "suspend": (
        r"(?:is|has been|currently|temporarily) (?:currently )?(?:suspended|deactivated|disabled|locked|frozen)",
        r"account (?:is )?(?:disabled|inactive|suspended|locked|expired|deactivated)",
        r"inactive (?:account|user|mailbox|recipient)|invalid/inactive user|user (?:is )?(?:suspended|terminated|inactive)",
        r"mailbox (?:is )?(?:disabled|inactive|frozen|suspended|currently suspended|locked)",
        r"email account that you tried to reach is (?:disabled|inactive)|archived recipient",
        r"this account has been (?:disabled|temporarily suspended)|user or domain is disabled",
        r"temporarily inactive|recipient suspend|administrative?ly disabled|boite du destinataire archivee",
        r"this address no longer accepts mail",
        r"(?:user|recipient|mailbox|account|address)(?: is| has been| was)? (?:disabled|deactivated|closed|archived)",
        r"(?:user|recipient|mailbox|account|address)(?: is| has been| was)? blocked by (?:the )?administrator",
        r"mailbox (?:is )?(?:closed|deactivated|archived)|account (?:was |has been )?(?:closed|terminated)",
        r"archived recipient|le compte du destinataire est bloque|recipient account is ?blocked|mailbox is disabled",
        r"suspended by (?:the )?administrator|account suspended|mailbox inactive|is inactive and",
    ),
    "has_moved": (
        r"has been replaced by|mailbox has moved|address has (?:been )?(?:changed|moved)|user has moved",
        r"no longer (?:at|with) this (?:address|organization|company)",
    ),
    "no_relaying": (
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)",
        r"(?:unable|not allowed|not permitted) to relay|no relaying|insecure mail relay|as a relay",
        r"not (?:an )?open relay|not a gateway|we don't handle mail for|relaying mail to",
        r"not local host|this system is not configured to relay",
        r"that domain isn't in my list of allowed rcpthosts|specified domain is not allowed",
        r"requires authentication when attempting to send to a non-local",
        r"permitted to relay through this server without authentication",
    ),
    "auth_failure": (
        r"\bspf\b.{0,40}(?:fail|check|record|validation|violation|policy|softfail)",
        r"sender policy framework|\bdmarc\b.{0,40}(?:policy|fail|reject)|dkim.{0,40}(?:fail|invalid|signature)",
        r"(?:unauthenticated|not authenticated) (?:email|mail|message|sender)",
        r"authentication requirements defined for the sender|required authentication level",
        r"is not allowed to send (?:mail )?from .{0,80}spf|5\.7\.2[0-6]\b",
        r"does not designate .{0,60} as permitted sender",
    ),
    "user_unknown": (
        r"user ?unknown|unknown (?:user|recipient|mailbox|address|local[ -]?part|e-?mail address)",
        r"no such (?:user|mailbox|recipient|address|person|account|local user)",
        r"(?:user|recipient|mailbox|address|account|addressee|e-?mail address)(?: [^ ]{1,80})? "
        r"(?:does not|doesn't|did not|does no longer) exist",
        r"(?:user|recipient|mailbox|address|account) (?:not found|not known|unknown|invalid|not exist)|no such user here",
        r"invalid (?:recipient|mailbox|address|user|e-?mail address)|not a valid (?:user|mailbox|recipient)",
        r"recipient (?:address )?rejected: (?:user unknown|unknown user|invalid|undeliverable address|access denied|userunknown)",
        r"user (?:[^ ]{1,80} )?(?:was )?not found|not listed in (?:domino directory|public name & address book)",
        r"address (?:rejected|not present|unknown|invalid|couldn't be found|could not be found|not found)",
        r"(?:mailbox|recipient) (?:is )?(?:unavailable|not available|invalid|inactive|not present)",
        r"email account that you tried to reach does not exist|address couldn't be found",
        r"the email address you entered couldn't be found|couldn't be found, or is unable to receive",
        r"doesn't have an? [\w.-]+ account|this user doesn't have|no mailbox (?:here|by that name|found)",
        r"sorry, no mailbox|mailbox not found|mailbox unavailable|no valid recipients for this mm",
        r"adresse d au moins un destinataire invalide",
        r"resolver\.adr\.(?:ex)?recip(?:ient)?notfound|recipnotfound|#5\.1\.1|bad (?:destination )?(?:mailbox|recipient|address)",
        r"not (?:a )?(?:valid|known|local) (?:user|recipient|address)|is not a known user",
        r"recipient (?:not found|does not exist|unknown|is not local|not exist)|destination addresses were unknown",
        r"no account by that name|there is no one at this address|can't accept user|not our customer",
        r"unrouteable address.{0,20}user|vdeliver: invalid or unknown virtual user|badrcptto|validrcptto",
        r"utilisateur inconnu|nessun utente|no existe|existiert nicht|unbekannt|onbekende gebruiker|destinataire inconnu",
        r"adresse (?:ist )?(?:ung[uü]ltig|nicht gefunden)|empf[aä]nger(?:adresse)? (?:ist )?(?:unbekannt|ung[uü]ltig)",
        r"this email address is wrong or no longer valid|invalid mailbox|mailbox invalid",
        r"addressee unknown|user not active|not our user|unknown or illegal alias",
    ),
    "filtered": (
        r"message filtered|user refuses to receive|recipient is only accepting mail from",
        r"refused due to recipient preferences|user reject|you have been blocked by the recipient",
        r"account is protected by|is not accepting any mail|message rejected due to user rules",
        r"cannot route mail to user|has restricted sms e-mail|recipient id refuse",
        r"bounced address|previously bounced|suppression list|on the suppression list",
        r"rejected (?:by|due to) (?:the )?recipient'?s? (?:[\w-]+ ){0,2}(?:filter|settings|rules?)",
        r"recipient'?s? (?:spam |content |mail |junk )?filter|delivery to this address is restricted",
        r"rejected by (?:a |the )?(?:\w+ )?filter|header filter|mail filter settings",
        r"transport\.rules\.rejectmessage|mail flow rule|not authorized to send to this recipient",
    ),
    "require_ptr": (
        r"\bptr\b|reverse dns|rdns|reverse lookup|cannot find your hostname|cannot resolve your address",
        r"ip name lookup failed|unresolvable relay host name|no reverse|does not have a ptr",
        r"client host rejected: (?:cannot find your|unknown client)|reverse (?:name|address) (?:lookup )?(?:fail|missing)",
    ),
    "not_compliant_rfc": (
        r"not rfc ?5322 compliant|rfcmessagenoncompliant|duplicate header|multiple .{0,30} headers?",
        r"rfc ?(?:2822|5322|822) (?:violation|non-?compliant)|does not comply with rfc",
    ),
    "bad_reputation": (
        r"(?:poor|bad|low|negative) (?:[\w/'-]+ ){0,3}reputation|reputation (?:score|problems?|issues?|is too low)",
        r"(?:ip|domain|sender|sending) (?:address )?reputation|due to (?:the )?reputation",
        r"temporarily rate limited due to ip reputation",
        r"unexpected volume or user complaints",
    ),
    "content_error": (
        r"improper use of 8-bit data|invalid mime|mime complexity|header size exceeds maximum",
        r"improperly-formatted binary content|unnecessary base64 encoding|too many \"received\" headers",
        r"message header size, or recipient list, exceeds policy limit|routing loop detected -- too many received",
        r"content[- ]type.{0,30}(?:not allowed|invalid)|malformed (?:mime|message|header)",
    ),
    "rejected": (
        r"sender (?:address )?(?:rejected|denied|verify failed|not pre-approved|is spammer|was rejected|blacklisted|blocked)",
        r"(?:bad|invalid|unknown|unroutable) sender|sender domain (?:is empty|must exist|does not exist|not found)",
        r"domain of sender address|sender address has been blacklisted|you are sending to/from an address",
        r"(?:mail|envelope) from (?:not owned|rejected)|from: domain is invalid|null sender is not allowed",
        r"empty envelope senders? not allowed|returned mail not accepted here|batv|bogus mail from",
        r"administrative prohibition|not allowed to post to this mailing list|sender is in my black list",
        r"(?:do|may) not have permission to post|not (?:a )?member of (?:the|this) (?:group|list)",
        r"your email address has been blacklisted|this server does not accept mail from",
        r"access denied \(sender blacklisted\)|access denied \(in reply to mail from command\)",
        r"message rejected: email address is not verified|senderfilterconfig|not a registered gateway user",
        r"sending this from a different address or alias|sendasdenied|not authorized to send as|send as denied",
        r"delivery not authorized, message refused|resolver\.rst\.notauthorized|envelope blocked",
    ),
    "host_unknown": (
        r"host (?:or domain name )?(?:not found|unknown|unreachable)|unknown (?:host|domain)|no such domain",
        r"domain (?:does not exist|is not reachable|not found|name not found|must exist|unknown)",
        r"name or service not known|unrout(?:e)?able (?:address|domain|mail domain)",
        r"(?:couldn't|could not) find any host|nonexistentdomain|dns\.nonexistentdomain|nxdomain",
        r"mail domain mentioned in email address is unknown|recipient domain must exist",
        r"all (?:relevant )?mx records point to non-existent hosts|all host address lookups failed permanently",
        r"the account or domain may not exist|no mx (?:or a )?record|domain .{0,60} (?:does not exist|couldn't be found)",
        r"dns (?:error|lookup).{0,60}(?:doesn't|does not|not) exist|dns lookup failure: host \S+ not found",
        r"remote domain doesn'?t exist|domain name not found",
    ),
    "virus_detected": (r"virus|malware|infected|potentially executable attachment|malicious",),
    "spam_detected": (
        r"\bspam\b|spamassassin|unsolicited|bulk (?:e-?mail|mail|advertising)|junk mail",
        r"content filter rejection|mail content denied|message content rejected|high probability of",
        r"rejected for policy reasons \(spam\)|rejecting banned content|rejecting mail content",
        r"uribl|surbl|blacklisted url|message looks like|appears to be unsolicited",
        r"our system has detected that this message is|spam-like characteristics|5\.7\.28\b",
        r"message refused by .{0,30}spamprofiler|recurrent pattern detection|classified as bulk",
        r"mail score \(|this message scored .{0,20} points",
    ),
    "speeding": (r"please try again slower|receiving mail at a rate|sending (?:too fast|at a rate)",),
    "rate_limited": (
        r"temporarily rate limited|rate ?limit(?:ed|ing)?\b|rate exceeded|unusual rate|rate of (?:incoming|unsolicited)",
        r"too many (?:messages|mails|emails) (?:in|per|from)|throttl(?:ed|ing)\b|4\.7\.28",
        r"grey ?list(?:ed|ing)?|gray ?list(?:ed|ing)?|server busy\. please try again later|4\.7\.5\d\d server busy",
    ),
    "too_many_conn": (
        r"too many (?:connections|concurrent|sessions|smtp sessions|errors from your ip|recipients)",
        r"connection (?:rate )?limit|exceeds per-domain connection limit|max(?:imum)? (?:number of )?connections",
        r"throttling failure|has exceeded the max emails per hour|all available ips are at maximum",
        r"trop de connexions|we have already made numerous attempts|reciplimit|too many connections, slow down",
    ),
    "blocked": (
        r"blocked|black ?list(?:ed)?|block ?list(?:ed)?|\brbl\b|\bdnsbl\b|spamhaus|spamcop|barracudacentral",
        r"\bis listed (?:in|on|at) |listed (?:in|on|at) .{0,40}(?:rbl|dnsbl|\bbl\b|block|black|spam|sorbs|abuse)",
        r"abuseat\.org|sorbs|banned sending ip|banned|client host rejected",
        r"connection (?:refused|dropped|reset)|refused to talk to me|not accepting connections",
        r"service not available, closing transmission channel|go away|you are not allowed to connect",
        r"access denied|not (?:currently )?accepting mail from your ip|traffic not accepted from this ip",
        r"your (?:ip|network|server|host)(?: address)? (?:is |has been )?(?:blocked|listed|rejected|banned|not allowed)",
        r"helo command rejected|dynamic ip|dialup|residential|zombie|please use the smtp server of your isp",
        r"after initial connection|connection was dropped|ip (?:address )?(?:is )?not allowed|\[tss0[0-9]\]",
        r"messages from [\d.]+ temporarily deferred|mail from .{0,40} refused|poor reputation",
        r"denied by (?:dnsbl|rbl)",
        r"(?:ip|host|address|sender|domain|network) (?:\S+ )?(?:is |has been )?(?:listed|blacklisted|blocklisted|blocked)",
        r"listed (?:in|on|at|by) [\w.-]+\.(?:org|net|com)|reputation block list|psbl|uceprotect|cloudmark",
        r"bloquee|bloque pour|adresse ip source|client host blocked|mail from dynamic ip|dynamic ip .{0,30}not accepted",
    ),
    # second tier: tried only when the first tier and the status code did not decide
    "policy_violation": (
        r"polic(?:y|ies) (?:violation|reasons|rejection)|local policy|denied by policy|organization(?:al)? (?:policy|settings)",
        r"closed mailing list|members-only list|illegal attachment|messages with multiple addresses",
        r"not accepted for policy reasons|protocol violation|header error|header are not accepted",
        r"you're using a mass mailer|do not accept messages containing images|security policies",
        r"message given low priority|captcha",
    ),
    "system_error": (
        r"system error|local error|internal (?:server )?error|server configuration error|config(?:uration)? error",
        r"loops back to myself|aliasing/forwarding loop|it would create a mail loop",
        r"queue file write error|temporary (?:local )?problem|timeout waiting for input|interrupted system call",
        r"service (?:currently )?unavailable|remote server is misconfigured|could not load drd|transaction failed",
        r"unable to (?:connect|deliver).{0,20}daemon|delivery to (?:file|pipe) forbidden|local delivery failed",
        r"too many recipients|resolver\.adr\.ambiguous|resolver\.adr\.badprimary|resolver\.adr\.invalidinsmtp",
    ),
    "network_error": (
        r"host name lookup failure|host not found, try again|name server reply|no route to host",
        r"host is unreachable|too many hops|hop count exceeded|routing loop|message probably in a routing loop",
        r"unable to resolve route|dns (?:records|lookup|error|failure)|could not connect and send",
        r"network (?:error|is unreachable)|mxloopback|loop detected|maximum forwarding loop|mail (?:forwarding )?loop",
        r"lost connection with",
    ),
    "system_full": (r"mail system full|system (?:storage|disk) (?:is )?full|exceeded storage allocation \(system\)",),
    "not_accept": (
        r"does not accept mail|nullmx|null mx|no mx record found for domain|mail receiving disabled",
        r"smtp protocol returned a permanent error|no route for current request|mx or srv record indicated no smtp service",
    ),
    "expired": (
        r"expired|timed? ?out|giving up|too long|delivery time|could not be delivered for .{0,20} days",
        r"delivery attempts will continue|have been failing for a long time|retry time not reached",
        r"has been delayed|not been collected after|was not reachable within the allowed queue period",
        r"server did not respond|could not find a gateway|unable to deliver message after multiple retries",
        r"queue\.expired|retry timeout exceeded|no action is required on your part",
    ),
    "failed_starttls": (r"starttls|tls required|requiretls|tls (?:negotiation|handshake) failed",),
    "security_error": (
        r"authentication (?:required|failure|failed|credentials invalid)|verification failure|must authenticate",
        r"not authorized to (?:perform|send)|unauthenticated senders not allowed|smtpclientauthentication",
        r"account not subscribed to ses|executable files are not allowed|resolver\.rst\.authrequired",
    ),
    "mailer_error": (r"\|\| exit |procmail|maildrop|command (?:failed|died|output)|mailer error|pipe to \||x-unix;",),
    "syntax_error": (
        r"syntax error|command unrecognized|unrecognized command|malformed address|bad address syntax",
        r"angle-brackets nested too deep|expected word or|domain missing in source-routed address",
    ),
    "vacation": (r"i am away|i am out of (?:the )?office|out of office|on vacation|abwesenheit",),
}

# Phrases that say a refusal is about the sender, the content or the mailbox's state — never
# that the address does not exist. A hard reason must yield to them (a wrong hard verdict
# suppresses a lead for good).
SOFT_EVIDENCE: tuple[str, ...] = (
    r"\b(?:rbl|dnsbl|spamhaus|spamcop|sorbs|barracuda(?:central)?|black ?list(?:ed)?|block ?list(?:ed)?|psbl)\b",
    r"reputation|\bspam\b|\bfilter(?:s|ed|ing)?\b|\bpolicy\b|polic(?:y|ies) (?:violation|reasons)",
    r"\b(?:suspended|disabled|deactivated|archived|greylist(?:ed|ing)?|throttl(?:ed|ing))\b|mailbox (?:is )?inactive",
    r"over ?quota|mailbox (?:is )?full|rate limit|too many (?:connections|messages)|dynamic ip|\bptr\b|reverse dns",
)

COMPILED: dict[str, re.Pattern[str]] = {
    reason: re.compile("|".join(f"(?:{p})" for p in patterns)) for reason, patterns in PATTERNS.items()
}


def matches(reason: str, text: str) -> bool:
    """Does normalised `text` carry a phrase of `reason`?"""
    pattern = COMPILED.get(reason)
    return bool(pattern and text and pattern.search(text))


_SOFT_EVIDENCE = re.compile("|".join(f"(?:{p})" for p in SOFT_EVIDENCE))


def has_soft_evidence(text: str) -> bool:
    """Does normalised `text` say the refusal is not about the address existing?"""
    return bool(text and _SOFT_EVIDENCE.search(text))


def normalise(text: str) -> str:
    return " ".join((text or "").lower().split())
