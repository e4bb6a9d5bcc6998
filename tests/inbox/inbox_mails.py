"""Real-shaped mails for the inbox tests: a reply, an auto-reply, a DSN, an ARF report, and noise."""

from __future__ import annotations

OUR_DOMAIN = "sender.example"


def reply(
    in_reply_to: str,
    *,
    sender: str = "lead@customer.example",
    text: str = "Yes, let's talk on Tuesday.",
    message_id: str = "<reply-1@customer.example>",
    references: str | None = None,
) -> bytes:
    refs = references or in_reply_to
    return f"""From: Lead Person <{sender}>
To: Alpha Sender <alpha@{OUR_DOMAIN}>
Subject: Re: Hello Lea
Date: Tue, 07 Jan 2025 10:15:00 +0100
Message-ID: {message_id}
In-Reply-To: {in_reply_to}
References: {refs}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

{text}

Best,
Lea
--\x20
Lea Lead, Customer Inc.

On Mon, 6 Jan 2025 at 09:00, Alpha Sender <alpha@{OUR_DOMAIN}> wrote:
> Hi Lea, welcome to Acme.
> Shall we book a call?
""".replace("\n", "\r\n").encode()


def auto_reply(in_reply_to: str, *, sender: str = "away@customer.example") -> bytes:
    return f"""From: Away Person <{sender}>
To: alpha@{OUR_DOMAIN}
Subject: Automatic reply: Hello Aaron
Date: Tue, 07 Jan 2025 10:16:00 +0100
Message-ID: <auto-1@customer.example>
In-Reply-To: {in_reply_to}
References: {in_reply_to}
Auto-Submitted: auto-replied
X-Autoreply: yes
Precedence: auto_reply
Content-Type: text/plain; charset=utf-8

I am out of the office until 20 January with limited access to email.
""".replace("\n", "\r\n").encode()


def dsn(
    original_message_id: str,
    *,
    recipient: str = "gone@customer.example",
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <gone@customer.example>: Recipient address rejected: User unknown",
    to: str = f"alpha@{OUR_DOMAIN}",
) -> bytes:
    return f"""Return-Path: <>
From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Tue, 07 Jan 2025 10:17:00 +0100
Message-ID: <dsn-{status}@mx.customer.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.customer.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.customer.example said: {diagnostic}

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example
Arrival-Date: Tue, 07 Jan 2025 10:16:59 +0100

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: failed
Status: {status}
Remote-MTA: dns; mx.customer.example
Diagnostic-Code: smtp; {diagnostic}

--B0UND
Content-Type: text/rfc822-headers

From: Alpha Sender <alpha@{OUR_DOMAIN}>
To: {recipient}
Subject: Hello there
Date: Tue, 07 Jan 2025 10:16:58 +0100
Message-ID: {original_message_id}

--B0UND--
""".replace("\n", "\r\n").encode()


def arf(original_message_id: str, *, recipient: str = "angry@customer.example") -> bytes:
    return f"""From: Feedback Loop <fbl@isp.example>
To: abuse@{OUR_DOMAIN}
Subject: FW: Hello there
Date: Tue, 07 Jan 2025 10:18:00 +0100
Message-ID: <arf-1@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARFB"

--ARFB
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message received from IP 192.0.2.1.

--ARFB
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeISP-FBL/1.0
Version: 1
Original-Mail-From: <alpha@{OUR_DOMAIN}>
Original-Rcpt-To: <{recipient}>
Arrival-Date: Tue, 07 Jan 2025 10:10:00 +0100
Source-IP: 192.0.2.1

--ARFB
Content-Type: message/rfc822

From: Alpha Sender <alpha@{OUR_DOMAIN}>
To: {recipient}
Subject: Hello there
Date: Tue, 07 Jan 2025 10:09:00 +0100
Message-ID: {original_message_id}

Hi, this is the message that was reported.

--ARFB--
""".replace("\n", "\r\n").encode()


def unrelated(n: int = 1) -> bytes:
    return f"""From: Newsletter <news@elsewhere.example>
To: alpha@{OUR_DOMAIN}
Subject: Weekly digest {n}
Date: Tue, 07 Jan 2025 10:19:00 +0100
Message-ID: <digest-{n}@elsewhere.example>
Content-Type: text/plain

Nothing to do with mail we sent.
""".replace("\n", "\r\n").encode()


def huge_reply(in_reply_to: str, size: int) -> bytes:
    head = reply(in_reply_to, message_id="<huge-reply@customer.example>", text="Big attachment coming.")
    return head + b"\r\n" + (b"x" * 76 + b"\r\n") * (size // 78 + 1)


GARBAGE = b"\x00\xff\xfe" * 1000 + b"\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n" + b"\x80" * 5000
