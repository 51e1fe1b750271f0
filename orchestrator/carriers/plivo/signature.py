"""Plivo webhook signatures, V3 (PLIVO.md §3): checking (server side) and signing (simulator).

The signed message is built by the SDK's own helpers (``plivo.utils.signature_v3``), so it is
byte-for-byte what ``plivo.utils.validate_v3_signature`` checks; the tests hold both to the
same answers. We compare with :func:`hmac.compare_digest` instead of the SDK's ``in`` on a list
(not constant-time, PLIVO.md §3.3), because the nonce is chosen by whoever sends the request.

The URL must be the one Plivo requested: ``public_url`` + path + query string, exactly
(:func:`public_request_url`; PLIVO.md §3.6). Pure: no I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3

SIGNATURE_HEADER = "X-Plivo-Signature-V3"
#: Signed with the main account's token when the call runs under a subaccount.
MAIN_ACCOUNT_SIGNATURE_HEADER = "X-Plivo-Signature-Ma-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"

#: Form fields; a repeated key may carry a list of values.
Params = Mapping[str, str | list[str]]


def public_request_url(public_url: str, path: str, query_string: str = "") -> str:
    """The URL as Plivo requested it: ``public_url`` (no trailing ``/``) + path + ``?query``."""
    url = public_url.rstrip("/") + path
    return f"{url}?{query_string}" if query_string else url


def _message(method: str, url: str, params: Params | None) -> str:
    """The string Plivo signs (before ``.nonce``), built by the SDK helpers."""
    if method.upper() == "GET":
        # construct_get_url merges the URL's query into the dict it is given: pass a copy
        built: bytes = construct_get_url(url, dict(params or {}))
    else:
        built = construct_post_url(url, dict(params or {}))
    return built.decode("utf-8")


def sign_v3(method: str, url: str, params: Params | None, auth_token: str, nonce: str) -> str:
    """The value of ``X-Plivo-Signature-V3`` for this request (or ``-Ma-V3`` with the main token).

    Args:
        method: ``GET`` or ``POST``.
        url: the full URL requested, query string included.
        params: the POST form fields; for GET, extra fields besides the URL's query (usually none).
        auth_token: the account's Auth Token.
        nonce: the value sent in ``X-Plivo-Signature-V3-Nonce``.
    """
    signature: bytes = get_signature_v3(
        auth_token.encode("utf-8"), _message(method, url, params), nonce.encode("utf-8")
    )
    return signature.decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict: look the name up case-insensitively
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""


def verify_v3(
    method: str,
    url: str,
    headers: Mapping[str, str],
    params: Params | None,
    auth_token: str,
) -> bool:
    """True when ``X-Plivo-Signature-V3`` or ``X-Plivo-Signature-Ma-V3`` signs this request.

    Either header may hold several comma-separated signatures; one match is enough.

    Args:
        method: the request's method; only ``GET`` and ``POST`` can be valid.
        url: the PUBLIC URL Plivo requested, query string included (:func:`public_request_url`).
        headers: the request headers (any mapping; looked up case-insensitively).
        params: the POST form fields (values may be lists for repeated keys); ``None`` for GET.
        auth_token: the Auth Token the signatures are checked with.

    Returns:
        False for a missing nonce or signature, an unsupported method or URL, or a mismatch.
    """
    nonce = _header(headers, NONCE_HEADER)
    offered = [
        candidate.strip()
        for name in (SIGNATURE_HEADER, MAIN_ACCOUNT_SIGNATURE_HEADER)
        for candidate in _header(headers, name).split(",")
        if candidate.strip()
    ]
    if not nonce or not offered or not auth_token:
        return False
    if method.upper() not in ("GET", "POST") or urlsplit(url).scheme not in ("http", "https"):
        return False
    expected = sign_v3(method, url, None if method.upper() == "GET" else params, auth_token, nonce)
    matched = False
    for candidate in offered:  # no early exit: the time taken does not depend on which matched
        matched |= hmac.compare_digest(candidate.encode("utf-8"), expected.encode("ascii"))
    return matched
