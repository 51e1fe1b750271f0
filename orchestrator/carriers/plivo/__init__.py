"""The Plivo carrier adapter: REST client, XML answers, webhook parsing, V3 signatures.

Modules, each with one job:

- ``rest``       :class:`PlivoCarrier`: the ``Carrier`` port over Plivo's REST API
- ``ratelimit``  the token bucket pacing outbound calls
- ``urls``       route paths and the callback URLs we give Plivo (our ids in the query string)
- ``xml``        Plivo XML documents (pure, via ``plivo.plivoxml``)
- ``webhooks``   Plivo callbacks to frozen events (pure)
- ``signature``  V3 signature checking and signing (pure)

Only this package imports the Plivo SDK and httpx for the carrier (docs/architecture.md "Shape").
"""

from __future__ import annotations

from orchestrator.carriers.plivo.ratelimit import TokenBucket
from orchestrator.carriers.plivo.rest import PlivoCarrier, RetryPolicy, carrier_error
from orchestrator.carriers.plivo.signature import (
    MAIN_ACCOUNT_SIGNATURE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    public_request_url,
    sign_v3,
    verify_v3,
)
from orchestrator.carriers.plivo.urls import CallbackUrls
from orchestrator.carriers.plivo.webhooks import LeadAnswer, Route, parse_event, parse_lead_answer
from orchestrator.carriers.plivo.xml import (
    empty_xml,
    hold_music_xml,
    lead_hold_xml,
    render_decision,
    unknown_number_xml,
    voicemail_xml,
)
from orchestrator.errors import WebhookInvalid

__all__ = [
    "MAIN_ACCOUNT_SIGNATURE_HEADER",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "CallbackUrls",
    "LeadAnswer",
    "PlivoCarrier",
    "RetryPolicy",
    "Route",
    "TokenBucket",
    "WebhookInvalid",
    "carrier_error",
    "empty_xml",
    "hold_music_xml",
    "lead_hold_xml",
    "parse_event",
    "parse_lead_answer",
    "public_request_url",
    "render_decision",
    "sign_v3",
    "unknown_number_xml",
    "verify_v3",
    "voicemail_xml",
]
