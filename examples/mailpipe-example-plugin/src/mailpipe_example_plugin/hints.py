"""What to do when `mailpipe accounts verify` fails against ACME Relay."""

from pipeline.plugin_host.hints import Step, hint

HINTS = (hint('ACME Relay logs in as "relay" with the relay token from the ACME console.', steps=[Step.AUTH]),)
