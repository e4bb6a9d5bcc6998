"""mailpipe: sends lead and campaign email through the customer's own SMTP accounts."""
