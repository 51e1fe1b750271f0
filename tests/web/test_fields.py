"""The request-decoding layer (``web.fields``): its pure helpers, and over real HTTP the
bodies that used to reach routes as crashes."""

from __future__ import annotations

import pytest

from orchestrator.errors import BodyError
from web.fields import body_kind, fields_from_json, fields_from_pairs, first_value, merge_fields
from web.step2 import tracking_guid_of

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


class TestFieldCollection:
    """The pure helpers that flatten a request into ``dict[str, list[str]]``."""

    def test_pairs_keep_repeated_keys_in_order(self) -> None:
        pairs = [("AgentID", "1"), ("TrackingGUID", GUID), ("AgentID", "2")]
        assert fields_from_pairs(pairs) == {"AgentID": ["1", "2"], "TrackingGUID": [GUID]}

    def test_json_scalars_are_stringified_and_arrays_kept(self) -> None:
        body = b'{"a": 1, "b": true, "c": false, "d": null, "e": 2.0, "f": 2.5, "g": [1, "x"]}'
        assert fields_from_json(body) == {
            "a": ["1"],
            "b": ["1"],
            "c": ["0"],
            "d": [""],
            "e": ["2"],
            "f": ["2.5"],
            "g": ["1", "x"],
        }

    @pytest.mark.parametrize("body", [b"nope", b'"text"', b'{"a": [[1]]}', b"  "])
    def test_json_problems_raise_body_error(self, body: bytes) -> None:
        with pytest.raises(BodyError):
            fields_from_json(body)

    @pytest.mark.parametrize(
        ("mimetype", "kind"),
        [
            ("", "none"),
            ("application/x-www-form-urlencoded", "form"),
            ("multipart/form-data", "form"),
            ("application/json", "json"),
            ("application/vnd.api+json", "json"),
        ],
    )
    def test_body_kind(self, mimetype: str, kind: str) -> None:
        assert body_kind(mimetype) == kind

    def test_unsupported_body_kind(self) -> None:
        with pytest.raises(BodyError, match="text/xml"):
            body_kind("text/xml")

    def test_merge_and_first_value(self) -> None:
        merged = merge_fields({"TrackingGuid": [GUID]}, {"AgentID": ["1"], "TrackingGuid": ["x"]})
        assert merged == {"TrackingGuid": [GUID, "x"], "AgentID": ["1"]}
        assert first_value(merged, "TrackingGUID") == GUID
        assert tracking_guid_of(merged) == GUID
        assert tracking_guid_of({"AgentID": ["1"]}) is None

    def test_a_pair_without_a_name_is_a_body_error(self) -> None:
        """werkzeug reads ``name="\\"`` as no name at all; that must be a 400, not a crash."""
        with pytest.raises(BodyError, match="no readable name"):
            fields_from_pairs([("AgentID", "1"), (None, "x")])

    @pytest.mark.parametrize(
        "body",
        [b"\xff", b"[" * 100_000, b'{"a": "\xff"}', b'{"a": ' * 2000 + b"1" + b"}" * 2000],
    )
    def test_undecodable_or_deep_json_is_a_body_error(self, body: bytes) -> None:
        with pytest.raises(BodyError, match="malformed JSON"):
            fields_from_json(body)
