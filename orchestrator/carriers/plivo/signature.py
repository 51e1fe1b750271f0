"""Plivo webhook signatures, V3 (docs/plivo.md §3): checking (server side) and signing (simulator).

The signed message follows the SDK's algorithm (``plivo.utils.signature_v3``; the steps are in
``docs/plivo.md``) and the HMAC is the SDK's own ``get_signature_v3``. The message itself is
built here on text rather than by the SDK's ``construct_get_url``, because that helper parses
the URL's query as *bytes* and raises ``UnicodeEncodeError`` as soon as a percent-escape decodes
to a non-ASCII character (a caller name with an accent on a GET callback). For every input the
SDK helper accepts, :func:`signed_message` returns the same string — a property test holds the
two to the same answers. We compare with :func:`hmac.compare_digest` instead of the SDK's ``in``
on a list (not constant-time), because the nonce is chosen by whoever sends the request.

:func:`verify_v3` never raises: anything it cannot verify (no nonce, an odd method, a URL or a
parameter it cannot read) is simply not verified, so the route answers 403.

The URL must be the one Plivo requested: ``public_url`` + path + query string, exactly
(:func:`public_request_url`; docs/plivo.md §3.6). Pure: no I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import parse_qs, urlparse, urlsplit, urlunparse

from plivo.utils.signature_v3 import get_signature_v3

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


def _query_pairs(params: Mapping[str, str | list[str]]) -> str:
    """``k=v`` pairs sorted by key (a key's values sorted too), joined with ``&``."""
    pairs: list[str] = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, list):
            pairs.append("&".join(f"{key}={v}" for v in sorted(value)))
        else:
            pairs.append(f"{key}={value}")
    return "&".join(pairs)


def _form_pairs(params: Params) -> str:
    """``key`` + ``value`` for keys sorted (a key's values sorted too), no separators."""
    return "".join(
        "".join(f"{key}{v}" for v in sorted(value)) if isinstance(value, list) else f"{key}{value}"
        for key, value in sorted(params.items())
    )


def signed_message(method: str, url: str, params: Params | None) -> str:
    """The string Plivo signs (before ``.nonce``): the SDK's construction, on text.

    ``base`` is the URL without query; the URL's query is percent-decoded (blank values kept).
    GET: ``base?pairs`` of the query merged with ``params``. POST: ``base`` + ``?query`` when
    the URL has one, then — when there are form params — ``.`` after a query or ``?`` without
    one, and the params as ``keyvalue`` runs.
    """
    parts = urlparse(url)  # as the SDK: ``;params`` of the last path segment are dropped
    base = urlunparse((parts.scheme, parts.netloc, parts.path, "", "", ""))
    query: dict[str, str | list[str]] = dict(parse_qs(parts.query, keep_blank_values=True))
    if method.upper() == "GET":
        pairs = _query_pairs({**(params or {}), **query})
        return f"{base}?{pairs}" if pairs else base
    pairs = _query_pairs(query)
    if not params:
        return f"{base}?{pairs}" if pairs else base
    return f"{base}?{pairs}{'.' if pairs else ''}{_form_pairs(params)}"


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
        auth_token.encode("utf-8"), signed_message(method, url, params), nonce.encode("utf-8")
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
        False for a missing nonce or signature, an unsupported method or URL, text that
        cannot be signed, or a mismatch. Never raises.
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
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return False
    if method.upper() not in ("GET", "POST") or scheme not in ("http", "https"):
        return False
    try:
        expected = sign_v3(
            method, url, None if method.upper() == "GET" else params, auth_token, nonce
        )
    except ValueError:  # UnicodeError included: text that cannot be signed is not verified
        return False
    matched = False
    for candidate in offered:  # no early exit: the time taken does not depend on which matched
        matched |= hmac.compare_digest(candidate.encode("utf-8"), expected.encode("ascii"))
    return matched
