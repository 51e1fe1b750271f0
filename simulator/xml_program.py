"""Parse a Plivo XML document into typed steps (docs/plivo.md §4). Pure: no trio, no I/O.

``parse_xml(text)`` returns the top-level steps of a ``<Response>`` in document order, each a
frozen dataclass with Plivo's attribute defaults (docs/plivo.md §4.2) filled in. Attribute names are
Plivo's camelCase; fields are snake_case. Anything that is not a Plivo document the simulator can
execute raises :class:`XmlProgramError` with a message naming the element and attribute, the way
Plivo ends a call with "Invalid Answer XML" (8011).

Unknown attributes are ignored (Plivo adds attributes over time); unknown elements are errors.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "DTMF",
    "Conference",
    "Dial",
    "GetDigits",
    "GetInput",
    "Hangup",
    "Number",
    "Play",
    "PreAnswer",
    "Prompt",
    "Record",
    "Redirect",
    "Speak",
    "Step",
    "Wait",
    "XmlProgramError",
    "parse_xml",
]


class XmlProgramError(ValueError):
    """The document is not Plivo XML the simulator can execute (the application's fault)."""


# --- steps ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speak:
    text: str
    loop: int = 1  # 0 = repeat until the call ends
    voice: str = "WOMAN"
    language: str = "en-US"


@dataclass(frozen=True, slots=True)
class Play:
    url: str
    loop: int = 1  # 0 = repeat until the call ends


@dataclass(frozen=True, slots=True)
class Wait:
    length: float = 1.0
    silence: bool = False
    beep: bool = False


Prompt = Speak | Play | Wait


@dataclass(frozen=True, slots=True)
class GetDigits:
    action: str = ""
    method: str = "POST"
    timeout: float = 5.0  # seconds to the first digit, per attempt, after the prompts
    digit_timeout: float = 2.0
    finish_on_key: str = "#"  # "" or "none" disables
    num_digits: int = 99
    retries: int = 1
    redirect: bool = True
    play_beep: bool = False
    valid_digits: str = "1234567890*#"
    invalid_digits_sound: str = ""
    prompts: tuple[Prompt, ...] = ()


@dataclass(frozen=True, slots=True)
class GetInput:
    action: str = ""
    method: str = "POST"
    input_type: str = "dtmf"  # "dtmf", "speech" or "dtmf speech"
    execution_timeout: float = 15.0
    digit_end_timeout: float | None = None  # None = "auto"
    speech_end_timeout: float | None = None
    finish_on_key: str = "#"
    num_digits: int = 32
    redirect: bool = True
    language: str = "en-US"
    prompts: tuple[Prompt, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    action: str = ""
    method: str = "POST"
    file_format: str = "mp3"
    redirect: bool = True
    timeout: float = 15.0  # seconds of silence that end the recording
    max_length: float = 60.0
    play_beep: bool = True
    finish_on_key: str = "#"
    record_session: bool = False
    start_on_dial_answer: bool = False
    callback_url: str = ""
    callback_method: str = "POST"


@dataclass(frozen=True, slots=True)
class Conference:
    room: str
    muted: bool = False
    enter_sound: str = ""
    exit_sound: str = ""
    start_on_enter: bool = True
    end_on_exit: bool = False
    stay_alone: bool = True
    wait_sound: str = ""
    max_members: int = 20
    record: bool = False
    record_file_format: str = "mp3"
    time_limit: float = 86400.0
    hangup_on_star: bool = False
    action: str = ""
    method: str = "POST"
    callback_url: str = ""
    callback_method: str = "POST"
    digits_match: str = ""
    redirect: bool = True


@dataclass(frozen=True, slots=True)
class Number:
    number: str  # a phone number, or a SIP URI for <User>
    send_digits: str = ""
    send_on_preanswer: bool = False


@dataclass(frozen=True, slots=True)
class Dial:
    numbers: tuple[Number, ...]
    action: str = ""
    method: str = "POST"
    timeout: float = 30.0  # not documented on the XML page; a voice-agents page lists 30
    time_limit: float = 14400.0
    hangup_on_star: bool = False
    caller_id: str = ""
    caller_name: str = ""
    confirm_sound: str = ""
    confirm_key: str = ""
    confirm_timeout: float = 120.0
    dial_music: str = ""
    callback_url: str = ""
    callback_method: str = "POST"
    redirect: bool = True


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str = ""  # "", "rejected" or "busy"
    schedule: float | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class DTMF:
    digits: str


@dataclass(frozen=True, slots=True)
class PreAnswer:
    prompts: tuple[Prompt, ...] = field(default=())


Step = (
    Speak
    | Play
    | Wait
    | GetDigits
    | GetInput
    | Record
    | Conference
    | Dial
    | Hangup
    | Redirect
    | DTMF
    | PreAnswer
)


# --- attribute readers --------------------------------------------------------------------


class _Attrs:
    """Typed access to one element's attributes; errors name the element and attribute."""

    def __init__(self, element: ET.Element) -> None:
        self._el = element

    def _fail(self, name: str, message: str) -> XmlProgramError:
        return XmlProgramError(f"<{self._el.tag}> attribute {name}: {message}")

    def text(self, name: str, default: str = "") -> str:
        value = self._el.get(name)
        return default if value is None else value.strip()

    def method(self, name: str = "method") -> str:
        value = self.text(name, "POST").upper()
        if value not in ("GET", "POST"):
            raise self._fail(name, f"must be GET or POST, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._el.get(name)
        if value is None or not value.strip():
            return default
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise self._fail(name, f"must be true or false, got {value!r}")
        return lowered == "true"

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._el.get(name)
        if value is None or not value.strip():
            return default
        try:
            parsed = float(value)
        except ValueError:
            raise self._fail(name, f"must be a number, got {value!r}") from None
        if parsed < minimum:
            raise self._fail(name, f"must be >= {minimum:g}, got {value!r}")
        return parsed

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self._el.get(name)
        if value is None or not value.strip():
            return default
        try:
            parsed = int(value.strip())
        except ValueError:
            raise self._fail(name, f"must be an integer, got {value!r}") from None
        if parsed < minimum:
            raise self._fail(name, f"must be >= {minimum}, got {value!r}")
        return parsed

    def optional_number(self, name: str) -> float | None:
        value = self._el.get(name)
        if value is None or not value.strip() or value.strip().lower() == "auto":
            return None
        return self.number(name, 0.0)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in allowed:
            raise self._fail(name, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value


def _body(element: ET.Element, what: str) -> str:
    text = (element.text or "").strip()
    if not text:
        raise XmlProgramError(f"<{element.tag}> needs {what} as its text")
    return text


def _no_children(element: ET.Element) -> None:
    if len(element):
        raise XmlProgramError(f"<{element[0].tag}> is not nestable in <{element.tag}>")


# --- element parsers ----------------------------------------------------------------------


def _speak(el: ET.Element) -> Speak:
    a = _Attrs(el)
    # SSML children (<break/>, <emphasis>...) are allowed: speak their text content
    text = " ".join("".join(el.itertext()).split())
    if not text:
        raise XmlProgramError("<Speak> needs the text to say")
    return Speak(
        text=text,
        loop=a.integer("loop", 1),
        voice=a.text("voice", "WOMAN"),
        language=a.text("language", "en-US"),
    )


def _play(el: ET.Element) -> Play:
    _no_children(el)
    return Play(url=_body(el, "a URL"), loop=_Attrs(el).integer("loop", 1))


def _wait(el: ET.Element) -> Wait:
    _no_children(el)
    a = _Attrs(el)
    return Wait(
        length=a.number("length", 1.0),
        silence=a.boolean("silence", False),
        beep=a.boolean("beep", False),
    )


_PROMPTS: dict[str, Callable[[ET.Element], Prompt]] = {
    "Speak": _speak,
    "Play": _play,
    "Wait": _wait,
}


def _prompts(el: ET.Element) -> tuple[Prompt, ...]:
    prompts: list[Prompt] = []
    for child in el:
        parse = _PROMPTS.get(child.tag)
        if parse is None:
            raise XmlProgramError(
                f"<{child.tag}> is not nestable in <{el.tag}> (allowed: Speak, Play, Wait)"
            )
        prompts.append(parse(child))
    return tuple(prompts)


def _get_digits(el: ET.Element) -> GetDigits:
    a = _Attrs(el)
    return GetDigits(
        action=a.text("action"),
        method=a.method(),
        timeout=a.number("timeout", 5.0),
        digit_timeout=a.number("digitTimeout", 2.0),
        finish_on_key=a.text("finishOnKey", "#"),
        num_digits=a.integer("numDigits", 99, minimum=1),
        retries=a.integer("retries", 1, minimum=1),
        redirect=a.boolean("redirect", True),
        play_beep=a.boolean("playBeep", False),
        valid_digits=a.text("validDigits", "1234567890*#"),
        invalid_digits_sound=a.text("invalidDigitsSound"),
        prompts=_prompts(el),
    )


def _get_input(el: ET.Element) -> GetInput:
    a = _Attrs(el)
    input_type = " ".join(a.text("inputType", "dtmf").split())
    if input_type not in ("dtmf", "speech", "dtmf speech", "speech dtmf"):
        raise XmlProgramError(f"<GetInput> attribute inputType: unknown value {input_type!r}")
    return GetInput(
        action=a.text("action"),
        method=a.method(),
        input_type=input_type,
        execution_timeout=a.number("executionTimeout", 15.0),
        digit_end_timeout=a.optional_number("digitEndTimeout"),
        speech_end_timeout=a.optional_number("speechEndTimeout"),
        finish_on_key=a.text("finishOnKey", "#"),
        num_digits=a.integer("numDigits", 32, minimum=1),
        redirect=a.boolean("redirect", True),
        language=a.text("language", "en-US"),
        prompts=_prompts(el),
    )


def _record(el: ET.Element) -> Record:
    _no_children(el)
    a = _Attrs(el)
    return Record(
        action=a.text("action"),
        method=a.method(),
        file_format=a.choice("fileFormat", "mp3", ("mp3", "wav")),
        redirect=a.boolean("redirect", True),
        timeout=a.number("timeout", 15.0),
        max_length=a.number("maxLength", 60.0, minimum=1.0),
        play_beep=a.boolean("playBeep", True),
        finish_on_key=a.text("finishOnKey", "#"),
        record_session=a.boolean("recordSession", False),
        start_on_dial_answer=a.boolean("startOnDialAnswer", False),
        callback_url=a.text("callbackUrl"),
        callback_method=a.method("callbackMethod"),
    )


def _conference(el: ET.Element) -> Conference:
    _no_children(el)
    a = _Attrs(el)
    return Conference(
        room=_body(el, "the room name"),
        muted=a.boolean("muted", False),
        enter_sound=a.text("enterSound"),
        exit_sound=a.text("exitSound"),
        start_on_enter=a.boolean("startConferenceOnEnter", True),
        end_on_exit=a.boolean("endConferenceOnExit", False),
        stay_alone=a.boolean("stayAlone", True),
        wait_sound=a.text("waitSound"),
        max_members=a.integer("maxMembers", 20, minimum=1),
        record=a.boolean("record", False),
        record_file_format=a.choice("recordFileFormat", "mp3", ("mp3", "wav")),
        time_limit=a.number("timeLimit", 86400.0),
        hangup_on_star=a.boolean("hangupOnStar", False),
        action=a.text("action"),
        method=a.method(),
        callback_url=a.text("callbackUrl"),
        callback_method=a.method("callbackMethod"),
        digits_match=a.text("digitsMatch"),
        redirect=a.boolean("redirect", True),
    )


def _number(el: ET.Element) -> Number:
    _no_children(el)
    a = _Attrs(el)
    return Number(
        number=_body(el, "a number" if el.tag == "Number" else "a SIP URI"),
        send_digits=a.text("sendDigits"),
        send_on_preanswer=a.boolean("sendOnPreanswer", False),
    )


def _dial(el: ET.Element) -> Dial:
    a = _Attrs(el)
    numbers: list[Number] = []
    for child in el:
        if child.tag not in ("Number", "User"):
            raise XmlProgramError(
                f"<{child.tag}> is not nestable in <Dial> (allowed: Number, User)"
            )
        numbers.append(_number(child))
    if not numbers:
        raise XmlProgramError("<Dial> needs at least one <Number> or <User>")
    confirm_key = a.text("confirmKey")
    confirm_sound = a.text("confirmSound")
    if confirm_key and not confirm_sound:
        raise XmlProgramError("<Dial> attribute confirmKey: needs confirmSound")
    return Dial(
        numbers=tuple(numbers),
        action=a.text("action"),
        method=a.method(),
        timeout=a.number("timeout", 30.0),
        time_limit=a.number("timeLimit", 14400.0),
        hangup_on_star=a.boolean("hangupOnStar", False),
        caller_id=a.text("callerId"),
        caller_name=a.text("callerName"),
        confirm_sound=confirm_sound,
        confirm_key=confirm_key,
        confirm_timeout=a.number("confirmTimeout", 120.0),
        dial_music=a.text("dialMusic"),
        callback_url=a.text("callbackUrl"),
        callback_method=a.method("callbackMethod"),
        redirect=a.boolean("redirect", True),
    )


def _hangup(el: ET.Element) -> Hangup:
    _no_children(el)
    a = _Attrs(el)
    schedule = a.optional_number("schedule")
    return Hangup(reason=a.choice("reason", "", ("", "rejected", "busy")), schedule=schedule)


def _redirect(el: ET.Element) -> Redirect:
    _no_children(el)
    return Redirect(url=_body(el, "a URL"), method=_Attrs(el).method())


def _dtmf(el: ET.Element) -> DTMF:
    _no_children(el)
    return DTMF(digits=_body(el, "digits"))


def _pre_answer(el: ET.Element) -> PreAnswer:
    return PreAnswer(prompts=_prompts(el))


_STEPS: dict[str, Callable[[ET.Element], Step]] = {
    "Speak": _speak,
    "Play": _play,
    "Wait": _wait,
    "GetDigits": _get_digits,
    "GetInput": _get_input,
    "Record": _record,
    "Conference": _conference,
    "Dial": _dial,
    "Hangup": _hangup,
    "Redirect": _redirect,
    "DTMF": _dtmf,
    "PreAnswer": _pre_answer,
}


def parse_xml(document: str | bytes) -> tuple[Step, ...]:
    """Parse a Plivo XML document into its top-level steps.

    Raises:
        XmlProgramError: empty or non-XML input, a root other than ``<Response>``, an element
            the simulator does not know, a bad nesting, or a bad attribute value.
    """
    if isinstance(document, bytes):
        if not document.strip():
            raise XmlProgramError("empty document (expected Plivo XML)")
    elif not document.strip():
        raise XmlProgramError("empty document (expected Plivo XML)")
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise XmlProgramError(f"not XML: {exc}") from None
    if root.tag != "Response":
        raise XmlProgramError(f"root element must be <Response>, got <{root.tag}>")
    steps: list[Step] = []
    for child in root:
        parse = _STEPS.get(child.tag)
        if parse is None:
            raise XmlProgramError(f"<{child.tag}> is not an element the simulator can execute")
        steps.append(parse(child))
    return tuple(steps)
