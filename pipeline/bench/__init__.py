"""The throughput benchmark behind `ops/bench`: raw SMTP and the whole pipeline measured in one run.

Only ratios taken in one run are comparable (absolute figures drift with the machine and its
load), so one run measures the raw aiosmtplib baseline against Postfix's `smtp-sink` and the
pipeline against the same sink, and prints both with their ratio.
"""
