"""The simulator's Plivo XML parser, on the shapes of docs/plivo.md §4.3 and on malformed input."""

from __future__ import annotations

import pytest
from plivo import plivoxml

from simulator.xml_program import (
    DTMF,
    Conference,
    Dial,
    GetDigits,
    GetInput,
    Hangup,
    Number,
    Play,
    PreAnswer,
    Record,
    Redirect,
    Speak,
    Wait,
    XmlProgramError,
    parse_xml,
)

BASE = "https://app.example.com/plivo"

WHISPER = f"""<Response>
  <GetDigits action="{BASE}/whisper/result?call=42" method="POST" timeout="8" finishOnKey=""
             numDigits="1" retries="1" redirect="true" validDigits="1">
    <Speak voice="WOMAN" language="en-US">Incoming call from a customer. Press 1 to accept.</Speak>
  </GetDigits>
  <Speak>No input received. Goodbye.</Speak>
  <Hangup reason="rejected"/>
</Response>"""

HOLD_ROOM = f"""<Response>
  <Conference enterSound="beep:1" startConferenceOnEnter="false" endConferenceOnExit="true"
    stayAlone="false" waitSound="{BASE}/hold-music.xml" maxMembers="2" record="true"
    recordFileFormat="mp3" action="{BASE}/conf/exit" method="POST"
    callbackUrl="{BASE}/conf/events" callbackMethod="POST">queue-42</Conference>
</Response>"""

VOICEMAIL = f"""<Response>
  <Speak>Nobody is available. Please leave a message after the beep.</Speak>
  <Record action="{BASE}/voicemail/done" method="POST" fileFormat="mp3" redirect="false"
    timeout="10" maxLength="120" playBeep="true" finishOnKey="#"
    callbackUrl="{BASE}/voicemail/ready" callbackMethod="POST"/>
  <Speak>Thank you. Goodbye.</Speak>
  <Hangup/>
</Response>"""


class TestDocumentedShapes:
    """The three documents of docs/plivo.md §4.3 parse into the expected steps."""

    def test_whisper_get_digits(self) -> None:
        """GetDigits keeps its attributes and nested Speak; the fall-through steps follow."""
        steps = parse_xml(WHISPER)
        assert [type(s) for s in steps] == [GetDigits, Speak, Hangup]
        gd = steps[0]
        assert isinstance(gd, GetDigits)
        assert gd.action == f"{BASE}/whisper/result?call=42"
        assert (gd.timeout, gd.num_digits, gd.retries, gd.finish_on_key) == (8.0, 1, 1, "")
        assert gd.valid_digits == "1"
        assert gd.redirect is True
        assert gd.prompts == (
            Speak("Incoming call from a customer. Press 1 to accept.", voice="WOMAN"),
        )
        assert steps[2] == Hangup(reason="rejected")

    def test_hold_conference(self) -> None:
        """Conference attributes map to typed fields; the text is the room."""
        (conf,) = parse_xml(HOLD_ROOM)
        assert conf == Conference(
            room="queue-42",
            enter_sound="beep:1",
            start_on_enter=False,
            end_on_exit=True,
            stay_alone=False,
            wait_sound=f"{BASE}/hold-music.xml",
            max_members=2,
            record=True,
            record_file_format="mp3",
            action=f"{BASE}/conf/exit",
            method="POST",
            callback_url=f"{BASE}/conf/events",
            callback_method="POST",
        )

    def test_voicemail_record(self) -> None:
        """Record keeps action, redirect=false, timeouts and callbackUrl."""
        steps = parse_xml(VOICEMAIL)
        assert [type(s) for s in steps] == [Speak, Record, Speak, Hangup]
        record = steps[1]
        assert isinstance(record, Record)
        assert (record.action, record.redirect, record.timeout, record.max_length) == (
            f"{BASE}/voicemail/done",
            False,
            10.0,
            120.0,
        )
        assert record.callback_url == f"{BASE}/voicemail/ready"
        assert record.play_beep is True
        assert record.finish_on_key == "#"

    def test_dial_with_confirm_and_following_elements(self) -> None:
        """Dial with Number children; Wait and Redirect after it."""
        xml = f"""<Response>
          <Dial action="{BASE}/dial" timeout="20" callerId="+14155550100"
                confirmSound="{BASE}/whisper.xml" confirmKey="1" dialMusic="real"
                callbackUrl="{BASE}/dial/events" redirect="false">
            <Number sendDigits="ww1234">+14155550111</Number>
            <Number>14155550112</Number>
          </Dial>
          <Wait length="2"/>
          <Redirect method="GET">{BASE}/next</Redirect>
        </Response>"""
        dial, wait, redirect = parse_xml(xml)
        assert isinstance(dial, Dial)
        assert dial.numbers == (Number("+14155550111", send_digits="ww1234"), Number("14155550112"))
        assert (dial.timeout, dial.confirm_key, dial.redirect) == (20.0, "1", False)
        assert dial.caller_id == "+14155550100"
        assert wait == Wait(length=2.0)
        assert redirect == Redirect(url=f"{BASE}/next", method="GET")

    def test_get_input_dtmf(self) -> None:
        """GetInput reads inputType, timeouts and its prompt."""
        xml = (
            '<Response><GetInput action="https://a/x" inputType="dtmf" executionTimeout="10" '
            'digitEndTimeout="3" numDigits="1" redirect="true"><Speak>Press</Speak>'
            "</GetInput></Response>"
        )
        (gi,) = parse_xml(xml)
        assert isinstance(gi, GetInput)
        assert (gi.input_type, gi.execution_timeout, gi.digit_end_timeout, gi.num_digits) == (
            "dtmf",
            10.0,
            3.0,
            1,
        )
        assert gi.prompts == (Speak("Press"),)

    def test_sdk_generated_documents(self) -> None:
        """Documents built with plivo.plivoxml parse (the adapter generates XML this way)."""
        r = plivoxml.ResponseElement()
        gd = plivoxml.GetDigitsElement(
            action=f"{BASE}/w",
            method="POST",
            num_digits=1,
            timeout=8,
            valid_digits="1",
            finish_on_key="",
            redirect=True,
            retries=1,
        )
        gd.add_speak("Press 1.")
        r.add(gd)
        r.add_play(f"{BASE}/tone.mp3", loop=2)
        r.add_wait(length=3)
        r.add_hangup()
        steps = parse_xml(r.to_string())
        assert [type(s) for s in steps] == [GetDigits, Play, Wait, Hangup]
        assert steps[1] == Play(f"{BASE}/tone.mp3", loop=2)


class TestDefaults:
    """Attributes left out take Plivo's documented defaults (docs/plivo.md §4.2)."""

    def test_element_defaults(self) -> None:
        """GetDigits, Record, Conference, Dial and Speak defaults."""
        xml = (
            "<Response><GetDigits/><Record/><Conference>r</Conference>"
            "<Dial><Number>1</Number></Dial><Speak>x</Speak><Wait/></Response>"
        )
        gd, rec, conf, dial, speak, wait = parse_xml(xml)
        assert gd == GetDigits()
        assert (gd.timeout, gd.num_digits, gd.retries, gd.finish_on_key) == (5.0, 99, 1, "#")
        assert gd.valid_digits == "1234567890*#"
        assert gd.method == "POST"
        assert gd.redirect
        assert rec == Record()
        assert (rec.timeout, rec.max_length, rec.play_beep, rec.file_format) == (
            15.0,
            60.0,
            True,
            "mp3",
        )
        assert conf == Conference(room="r")
        assert (conf.start_on_enter, conf.end_on_exit, conf.stay_alone, conf.max_members) == (
            True,
            False,
            True,
            20,
        )
        assert isinstance(dial, Dial)
        assert dial.timeout == 30.0
        assert dial.redirect
        assert speak == Speak("x", loop=1, voice="WOMAN", language="en-US")
        assert wait == Wait(length=1.0)

    def test_empty_response_has_no_steps(self) -> None:
        """An empty <Response/> is valid: the call ends (4010) when it runs."""
        assert parse_xml("<Response/>") == ()
        assert parse_xml(b"<Response></Response>") == ()

    def test_misc_elements(self) -> None:
        """DTMF, PreAnswer and Hangup schedule parse."""
        xml = (
            "<Response><PreAnswer><Speak>hi</Speak></PreAnswer><DTMF>12w3</DTMF>"
            '<Hangup schedule="30"/></Response>'
        )
        assert parse_xml(xml) == (
            PreAnswer((Speak("hi"),)),
            DTMF("12w3"),
            Hangup(schedule=30.0),
        )

    def test_ssml_speak_text(self) -> None:
        """Speak with SSML children says their text."""
        (speak,) = parse_xml(
            '<Response><Speak voice="Polly.Joanna">Hi <break/>there</Speak></Response>'
        )
        assert speak == Speak("Hi there", voice="Polly.Joanna")


class TestMalformed:
    """Input that is not executable Plivo XML raises XmlProgramError naming the problem."""

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            ("", "empty document"),
            ("   ", "empty document"),
            ('{"not": "xml"}', "not XML"),
            ("<html><body>Oops</body></html>", "root element must be <Response>"),
            ("<Response><Speak>unclosed</Response>", "not XML"),
            ("<Response><Sing>la</Sing></Response>", "<Sing> is not an element"),
            (
                "<Response><GetDigits><Record/></GetDigits></Response>",
                "<Record> is not nestable in <GetDigits>",
            ),
            (
                "<Response><Dial><Speak>x</Speak></Dial></Response>",
                "<Speak> is not nestable in <Dial>",
            ),
            ("<Response><Dial/></Response>", "needs at least one <Number>"),
            ("<Response><Conference/></Response>", "needs the room name"),
            ("<Response><Play/></Response>", "needs a URL"),
            ('<Response><GetDigits timeout="soon"/></Response>', "timeout: must be a number"),
            ('<Response><GetDigits numDigits="0"/></Response>', "numDigits: must be >= 1"),
            ('<Response><Record redirect="yes"/></Response>', "redirect: must be true or false"),
            ('<Response><Record fileFormat="ogg"/></Response>', "fileFormat"),
            (
                '<Response><Redirect method="PUT">https://x</Redirect></Response>',
                "method: must be GET or POST",
            ),
            ('<Response><Hangup reason="tired"/></Response>', "reason"),
            (
                '<Response><Dial confirmKey="1"><Number>1</Number></Dial></Response>',
                "confirmKey: needs confirmSound",
            ),
            ('<Response><GetInput inputType="telepathy"/></Response>', "inputType"),
        ],
    )
    def test_rejected(self, document: str, message: str) -> None:
        """Each malformed document is refused with a message that says why."""
        with pytest.raises(XmlProgramError, match=message.replace("(", r"\(")):
            parse_xml(document)
