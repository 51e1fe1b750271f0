"""Sign outgoing webhooks the way Plivo does (docs/plivo.md §3). Pure: no trio, no I/O.

The signature is computed with the Plivo SDK's own helpers (``construct_post_url`` /
``construct_get_url`` / ``get_signature_v3``), so whatever ``plivo.utils.validate_v3_signature``
accepts, we produce. :func:`build_webhook` also decides where the parameters go: the form body
for POST, the query string for GET (then the signed URL is the one with the query).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3

__all__ = ["SignedRequest", "build_webhook", "new_nonce", "sign_v3"]

SIGNATURE_HEADER = "X-Plivo-Signature-V3"
MA_SIGNATURE_HEADER = "X-Plivo-Signature-Ma-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"


def new_nonce() -> str:
    """A random 20-digit nonce, like the ones in Plivo's examples."""
    return str(secrets.randbelow(10**20)).zfill(20)


def sign_v3(method: str, url: str, params: Mapping[str, str], auth_token: str, nonce: str) -> str:
    """The ``X-Plivo-Signature-V3`` value for a request (docs/plivo.md §3.4).

    ``url`` is the URL exactly as requested (with its query string, without a fragment);
    ``params`` are the POST form fields (for GET they are merged with the URL's query, which is
    what Plivo does; pass ``{}`` when they are already in ``url``).
    """
    copy = dict(params)  # construct_get_url mutates its argument
    if method.upper() == "GET":
        base = construct_get_url(url, copy)
    else:
        base = construct_post_url(url, copy)
    signature: bytes = get_signature_v3(auth_token.encode(), base.decode("utf-8"), nonce.encode())
    return signature.decode()


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A webhook ready to send: ``form`` is the POST body (empty for GET)."""

    method: str
    url: str
    form: dict[str, str]
    headers: dict[str, str]


def _strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def build_webhook(
    method: str,
    url: str,
    params: Mapping[str, str],
    *,
    auth_token: str,
    main_auth_token: str | None = None,
    nonce: str | None = None,
) -> SignedRequest:
    """Place ``params`` (form body or query string), and sign the request.

    The URL fragment (Plivo's ``#ct=...&rc=...`` retry settings, docs/plivo.md §6.3) is removed: it
    is never sent. ``main_auth_token`` signs ``X-Plivo-Signature-Ma-V3`` (defaults to
    ``auth_token``: the simulator's accounts are main accounts).
    """
    method = method.upper()
    nonce = nonce or new_nonce()
    target = _strip_fragment(url)
    form: dict[str, str] = {}
    if method == "GET":
        if params:
            parts = urlsplit(target)
            extra = urlencode(list(params.items()))
            query = f"{parts.query}&{extra}" if parts.query else extra
            target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        signed_params: Mapping[str, str] = {}
    else:
        form = dict(params)
        signed_params = form
    headers = {
        SIGNATURE_HEADER: sign_v3(method, target, signed_params, auth_token, nonce),
        MA_SIGNATURE_HEADER: sign_v3(
            method, target, signed_params, main_auth_token or auth_token, nonce
        ),
        NONCE_HEADER: nonce,
    }
    return SignedRequest(method=method, url=target, form=form, headers=headers)
