"""Every URL we hand to Plivo: route paths and the callback URLs built from ``public_url``.

Each per-call URL carries our own ids in its query string (``call`` = TrackingGUID, ``leg`` =
leg id), so a callback is routed by what *we* put there, never by carrier ids (docs/architecture.md
"Bridging"). Pure: no I/O.

The paths below are what the web blueprint serves. ``public_url`` may carry a path prefix (a
reverse proxy that strips it): the URLs then read ``{public_url}/plivo/...`` while the routes
stay ``/plivo/...``.
"""

from __future__ import annotations

from urllib.parse import urlencode

# --- route paths (served by web/plivo.py) -------------------------------------------------
#: The lead's answer URL, set on the Plivo application (docs/contract.md §10).
LEAD_ANSWER_PATH = "/plivo/answer"
#: The lead's hangup URL, set on the Plivo application (docs/contract.md §10).
LEAD_HANGUP_PATH = "/plivo/hangup"
#: ``waitSound`` of the lead's room: hold music XML.
HOLD_MUSIC_PATH = "/plivo/hold"
#: The lead's room XML (``redirect_lead(..., HOLD)`` transfers the lead here).
ROOM_PATH = "/plivo/room"
#: The lead's answer to the campaign's IVR question (GetDigits action, and after silence).
IVR_PATH = "/plivo/ivr"
LEG_ANSWER_PATH = "/plivo/leg/answer"
LEG_RING_PATH = "/plivo/leg/ring"
LEG_HANGUP_PATH = "/plivo/leg/hangup"
LEG_DIGITS_PATH = "/plivo/leg/digits"
CONFERENCE_PATH = "/plivo/conference"
VOICEMAIL_PATH = "/plivo/voicemail"
VOICEMAIL_DONE_PATH = "/plivo/voicemail/done"

#: Query-string keys of our ids.
CALL_PARAM = "call"
LEG_PARAM = "leg"


class CallbackUrls:
    """Builds the absolute callback URLs for one deployment.

    Args:
        public_url: how Plivo reaches us (``settings.server.public_url``); a trailing ``/``
            is ignored.
    """

    __slots__ = ("public_url",)

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url.rstrip("/")

    def absolute(self, path: str, **query: str) -> str:
        """``public_url + path``, plus ``query`` (in the order given) when not empty."""
        url = self.public_url + path
        return f"{url}?{urlencode(query)}" if query else url

    # --- fixed URLs -----------------------------------------------------------------------
    @property
    def lead_answer(self) -> str:
        return self.absolute(LEAD_ANSWER_PATH)

    @property
    def lead_hangup(self) -> str:
        return self.absolute(LEAD_HANGUP_PATH)

    @property
    def hold_music(self) -> str:
        return self.absolute(HOLD_MUSIC_PATH)

    # --- per call -------------------------------------------------------------------------
    def room(self, guid: str) -> str:
        return self.absolute(ROOM_PATH, call=guid)

    def ivr(self, guid: str) -> str:
        return self.absolute(IVR_PATH, call=guid)

    def conference(self, guid: str) -> str:
        return self.absolute(CONFERENCE_PATH, call=guid)

    def voicemail(self, guid: str) -> str:
        return self.absolute(VOICEMAIL_PATH, call=guid)

    def voicemail_done(self, guid: str) -> str:
        return self.absolute(VOICEMAIL_DONE_PATH, call=guid)

    # --- per agent leg --------------------------------------------------------------------
    def leg_answer(self, guid: str, leg_id: str) -> str:
        return self.absolute(LEG_ANSWER_PATH, call=guid, leg=leg_id)

    def leg_ring(self, guid: str, leg_id: str) -> str:
        return self.absolute(LEG_RING_PATH, call=guid, leg=leg_id)

    def leg_hangup(self, guid: str, leg_id: str) -> str:
        return self.absolute(LEG_HANGUP_PATH, call=guid, leg=leg_id)

    def leg_digits(self, guid: str, leg_id: str) -> str:
        return self.absolute(LEG_DIGITS_PATH, call=guid, leg=leg_id)
