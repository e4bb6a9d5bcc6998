"""OAuth 2.0 for mailbox accounts: access tokens for SASL XOAUTH2 and the "Connect with Google/Microsoft" flow.

``endpoint`` talks to a provider's token endpoint (authlib over httpx), ``cache`` keeps access tokens in
Redis encrypted with a single-flight refresh lock, ``tokens`` hands a worker a valid token, ``revocation``
records a grant the provider refused, ``sasl`` speaks XOAUTH2 over SMTP, ``connect`` runs the consent flow.
"""
