"""Request decoding: the one place where bytes from the network become request fields.

Every route that reads fields (Step 2, referrals, the Plivo webhooks, the admin hang-up) reads
them here, so that no malformed input can reach a route as anything but a clear 4xx:

- the query string, a form body (``application/x-www-form-urlencoded`` or
  ``multipart/form-data``) or a JSON object body become ``dict[str, list[str]]`` — repeated keys
  kept in order, JSON arrays kept as lists, JSON scalars stringified;
- anything that cannot be read that way raises :class:`~orchestrator.errors.BodyError`
  (answered 400), or :class:`~orchestrator.errors.BodyTooLarge` (413) for a form with more
  parts than :data:`MAX_FORM_PARTS` — never an exception a route did not expect. A multipart
  part without a usable name, a body that is not UTF-8 JSON, JSON nested deeper than orjson's
  limit, a truncated multipart body: all are ``BodyError``.

The field collection (:func:`body_kind`, :func:`fields_from_pairs`, :func:`fields_from_json`,
:func:`merge_fields`, :func:`first_value`) is pure; only :func:`read_fields` and
:func:`read_form` touch the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import orjson
from quart import current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from orchestrator.errors import BodyError, BodyTooLarge

Fields = dict[str, list[str]]
BodyKind = Literal["none", "form", "json"]

#: Parts a multipart body may have (each costs a parser step and an allocation).
MAX_FORM_PARTS = 1_000
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SUPPORTED = "application/x-www-form-urlencoded, multipart/form-data or application/json"


# --- pure field collection -------------------------------------------------------------------


def body_kind(mimetype: str) -> BodyKind:
    """How to read a POST body of this (lower-case, parameter-free) media type.

    ``"none"`` means no ``Content-Type`` was sent: only an empty body is acceptable then.

    Raises:
        BodyError: an unsupported media type.
    """
    if not mimetype:
        return "none"
    if mimetype in FORM_TYPES:
        return "form"
    if mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        return "json"
    raise BodyError(f"unsupported Content-Type {mimetype[:100]!r}; send {SUPPORTED}")


def fields_from_pairs(pairs: Iterable[tuple[str | None, str]]) -> Fields:
    """Group ``(key, value)`` pairs by key, keeping repeated keys' values in order.

    Raises:
        BodyError: a pair has no key (a multipart part whose name could not be read).
    """
    fields: Fields = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise BodyError("a form part has no readable name")
        fields.setdefault(key, []).append(value)
    return fields


def _scalar(field: str, value: object) -> str:
    """A JSON scalar as the text a form would carry (``true`` → ``"1"``, ``null`` → ``""``)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise BodyError(f"JSON field {field[:100]!r}: nested objects and arrays are not supported")


def fields_from_json(body: bytes) -> Fields:
    """Fields of a JSON object body: arrays stay lists, scalars are stringified.

    Raises:
        BodyError: empty, not valid UTF-8 JSON (orjson refuses nesting deeper than 1,024 too),
            not an object, or a value nested too deep.
    """
    if not body.strip():
        raise BodyError("empty JSON body; send a JSON object of fields")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise BodyError(f"JSON body must be an object of fields, got {type(data).__name__}")
    fields: Fields = {}
    for key, value in data.items():
        if isinstance(value, list):
            fields[key] = [_scalar(key, item) for item in value]
        else:
            fields[key] = [_scalar(key, value)]
    return fields


def merge_fields(*sources: Mapping[str, Sequence[str]]) -> Fields:
    """Concatenate several field sources (query string first, then body)."""
    merged: Fields = {}
    for source in sources:
        for key, values in source.items():
            merged.setdefault(key, []).extend(values)
    return merged


def first_value(fields: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The first value of ``name`` (matched case-insensitively), or ``None``."""
    lowered = name.lower()
    for key, values in fields.items():
        if key.lower() == lowered and values:
            return values[0]
    return None


# --- the request -------------------------------------------------------------------------------


def query_fields() -> Fields:
    """The request's query string as fields (werkzeug decodes it leniently: never raises)."""
    return fields_from_pairs(request.args.items(multi=True))


async def read_form() -> Fields:
    """The form body's fields (urlencoded or multipart; file parts are ignored).

    Raises:
        BodyError: the form cannot be parsed, or a part has no readable name.
        BodyTooLarge: more than :data:`MAX_FORM_PARTS` parts.
    """
    try:
        form = await request.form
    except RequestEntityTooLarge:
        cap = current_app.config.get("MAX_CONTENT_LENGTH")
        length = request.content_length
        if cap is not None and (length is None or length > cap):
            raise  # the body itself is over the cap: the app's 413 says so
        raise BodyTooLarge(f"form body with more than {MAX_FORM_PARTS} parts") from None
    except HTTPException as exc:  # a 400 werkzeug raises for a broken multipart body
        raise BodyError(f"malformed form body: {exc.description or exc.name}") from None
    except (ValueError, UnicodeError) as exc:
        raise BodyError(f"malformed form body: {exc}") from None
    return fields_from_pairs(form.items(multi=True))


async def read_fields(*, with_query: bool = True) -> Fields:
    """Query string (unless ``with_query`` is false) plus, on POST, the body's fields.

    Raises:
        BodyError: the body cannot be read as fields (see the module docstring).
    """
    query = query_fields() if with_query else {}
    if request.method != "POST":
        return query
    kind = body_kind(request.mimetype)
    if kind == "form":
        return merge_fields(query, await read_form())
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if kind == "json":
        return merge_fields(query, fields_from_json(body))
    if body.strip():
        raise BodyError(f"request body without a Content-Type; send {SUPPORTED}")
    return query
