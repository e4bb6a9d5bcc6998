"""What can go wrong getting an access token, split by what the pipeline must do about it."""

from __future__ import annotations

from pipeline.errors import MailpipeError

RECONNECT_HINT = "the mailbox owner must connect it again"


class OAuthError(MailpipeError):
    """Root of the OAuth errors; messages never hold a token or secret."""


class TokenEndpointUnavailable(OAuthError):
    """The token endpoint did not answer usefully (down, slow, 5xx): transient, retry later, no pause."""


class GrantRefused(OAuthError):
    """The token endpoint refused the grant for good (RFC 6749 §5.2 error code); the account cannot send."""

    def __init__(self, error: str, description: str | None = None) -> None:
        self.error = error
        self.description = description
        detail = f" ({description})" if description else ""
        advice = RECONNECT_HINT if self.revoked else "check the OAuth client id, secret and scopes"
        super().__init__(f"the token endpoint refused the grant: {error}{detail}: {advice}")

    @property
    def revoked(self) -> bool:
        """Consent withdrawn, password changed or token expired: only a new consent helps."""
        return self.error == "invalid_grant"


class StateRefused(OAuthError):
    """A connect-flow ``state`` that is forged, expired or already used."""
