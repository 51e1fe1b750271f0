"""Execute Plivo XML for one answered call, step by step, in simulated time (docs/plivo.md §4.1).

:func:`run_documents` fetches the answer document and runs it; an element's ``action`` answer
replaces the rest of the document when ``redirect=true``; a transfer (``SimCall.pending_transfer``)
replaces whatever runs; running out of elements ends the call with 4010. It returns the cause
the call ends with; the engine hangs up with it.

What the simulated person does comes from the call's script: the keys they press at
``<GetDigits>``/``<GetInput>``, the message they speak at ``<Record>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import trio

from simulator.causes import (
    END_OF_XML,
    LOOP_DETECTED,
    HangupCause,
    busy_by_xml,
    normal_hangup,
    rejected_by_xml,
)
from simulator.conference import Rooms, run_conference
from simulator.dial import run_dial
from simulator.events import EventKind
from simulator.params import Recording, call_params, recording_params
from simulator.runtime import DocumentFailed, DocumentKind, Runtime, new_id
from simulator.scripts import LeadScript
from simulator.state import SimCall
from simulator.xml_program import (
    DTMF,
    Conference,
    Dial,
    GetDigits,
    GetInput,
    Hangup,
    Play,
    PreAnswer,
    Prompt,
    Record,
    Redirect,
    Speak,
    Step,
    Wait,
)

__all__ = ["MAX_TRANSFERS", "collect_digits", "run_documents"]

#: Plivo hangs a call up with "Loop detected" after this many transfers (docs/plivo.md §1.6).
MAX_TRANSFERS = 70

StepOutcome = tuple[Step, ...] | HangupCause | None


def collect_digits(pressed: str, finish_on_key: str, num_digits: int) -> tuple[str, bool]:
    """What ``<GetDigits>`` collects from keys pressed in one burst (pure).

    Returns the digits (without the finish key) and whether input completed by itself
    (finish key or ``num_digits`` reached) rather than by the digit timeout.

    >>> collect_digits("12#9", "#", 99)
    ('12', True)
    >>> collect_digits("123", "", 2)
    ('12', True)
    >>> collect_digits("1", "#", 3)
    ('1', False)
    """
    finish = "" if finish_on_key.lower() == "none" else finish_on_key
    digits = ""
    for key in pressed:
        if finish and key in finish:
            return digits, True
        digits += key
        if len(digits) >= num_digits:
            return digits, True
    return digits, False


class _Executor:
    def __init__(self, rt: Runtime, rooms: Rooms, call: SimCall) -> None:
        self.rt = rt
        self.rooms = rooms
        self.call = call
        self._handlers: Mapping[type, Callable[[Step], Awaitable[StepOutcome]]] = {
            Speak: self._prompt_step,
            Play: self._prompt_step,
            Wait: self._prompt_step,
            PreAnswer: self._pre_answer,
            DTMF: self._dtmf,
            Hangup: self._hangup,
            Redirect: self._redirect,
            GetDigits: self._get_digits,
            GetInput: self._get_input,
            Record: self._record,
            Conference: self._conference,
            Dial: self._dial,
        }

    # --- documents ------------------------------------------------------------------------

    def _params(self) -> dict[str, str]:
        return call_params(self.call.ident, self.call.status_text())

    async def _fetch(
        self,
        url: str,
        method: str,
        kind: DocumentKind,
        what: str,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[Step, ...]:
        params = self._params()
        if extra:
            params.update(extra)
        return await self.rt.fetch_document(self.call, url, method, params, kind=kind, what=what)

    async def run(self) -> HangupCause:
        call = self.call
        try:
            # an inbound call is not answered yet when its answer URL is requested
            status = "ringing" if call.ident.direction == "inbound" else "in-progress"
            steps = await self.rt.fetch_document(
                call,
                call.urls.answer_url,
                call.urls.answer_method,
                dict(call_params(call.ident, status), Event="StartApp"),
                kind="answer",
                what="answer",
                fallback=(call.urls.fallback_url, call.urls.fallback_method),
            )
        except DocumentFailed as failed:
            return failed.cause
        while True:
            outcome: StepOutcome = None
            call.doc_scope = trio.CancelScope()
            if call.pending_transfer is not None:
                call.doc_scope.cancel()
            with call.doc_scope:
                outcome = await self._run_steps(steps)
            if call.pending_transfer is not None:
                url, method = call.pending_transfer
                call.pending_transfer = None
                call.transfers += 1
                if call.transfers > MAX_TRANSFERS:
                    return LOOP_DETECTED
                self.rt.log.add(
                    EventKind.CALL_TRANSFERRED,
                    call_uuid=call.call_uuid,
                    number=call.party_number,
                    url=url,
                )
                try:
                    steps = await self._fetch(url, method, "transfer", "transfer")
                except DocumentFailed as failed:
                    return failed.cause
                continue
            if isinstance(outcome, HangupCause):
                return outcome
            if outcome is None:
                return END_OF_XML
            steps = outcome

    async def _run_steps(self, steps: tuple[Step, ...]) -> StepOutcome:
        """Run a document; return the next document, a cause to hang up with, or None at its end."""
        for step in steps:
            self.rt.log.add(
                EventKind.STEP_STARTED,
                call_uuid=self.call.call_uuid,
                number=self.call.party_number,
                step=type(step).__name__,
            )
            try:
                outcome = await self._handlers[type(step)](step)
            except DocumentFailed as failed:
                return failed.cause
            if outcome is not None:
                return outcome
        return END_OF_XML

    # --- simple elements ------------------------------------------------------------------

    def _prompt_s(self, prompt: Prompt) -> float | None:
        """Simulated duration of one prompt; None = forever (``loop="0"``)."""
        if isinstance(prompt, Wait):
            return prompt.length
        if prompt.loop == 0:
            return None
        one = self.rt.speak_s(prompt.text) if isinstance(prompt, Speak) else self.rt.timings.play_s
        return one * prompt.loop

    async def _play_prompt(self, prompt: Prompt) -> None:
        duration = self._prompt_s(prompt)
        if duration is None:
            await trio.sleep_forever()
        else:
            await self.rt.clock.sleep(duration)

    async def _prompt_step(self, step: Step) -> StepOutcome:
        assert isinstance(step, Speak | Play | Wait)
        await self._play_prompt(step)
        return None

    async def _pre_answer(self, step: Step) -> StepOutcome:
        assert isinstance(step, PreAnswer)
        for prompt in step.prompts:
            await self._play_prompt(prompt)
        return None

    async def _dtmf(self, step: Step) -> StepOutcome:
        assert isinstance(step, DTMF)
        await self.rt.clock.sleep(len(step.digits) * self.rt.timings.dtmf_s_per_digit)
        return None

    async def _hangup(self, step: Step) -> StepOutcome:
        assert isinstance(step, Hangup)
        if step.reason == "rejected":
            return rejected_by_xml()
        if step.reason == "busy":
            return busy_by_xml()
        if step.schedule:
            call, clock, delay = self.call, self.rt.clock, step.schedule

            async def later() -> None:
                await clock.sleep(delay)
                if call.live:
                    call.end(normal_hangup("Answer XML"))

            self.rt.spawn(later)
            return None
        return normal_hangup("Answer XML")

    async def _redirect(self, step: Step) -> StepOutcome:
        assert isinstance(step, Redirect)
        return await self._fetch(step.url, step.method, "redirect", "redirect")

    # --- input ------------------------------------------------------------------------------

    def _prompts_s(self, prompts: tuple[Prompt, ...]) -> float:
        total = 0.0
        for prompt in prompts:
            duration = self._prompt_s(prompt)
            total += 0.0 if duration is None else duration
        return total

    async def _collect(
        self,
        prompts: tuple[Prompt, ...],
        attempts: int,
        timeout: float,
        finish_on_key: str,
        num_digits: int,
        digit_timeout: float,
        valid: str | None,
    ) -> str | None:
        """Play the prompts and wait for keys, ``attempts`` times; the digits, or None."""
        script = self.call.script
        press, press_at = script.press, script.press_after_s
        elapsed = 0.0
        for attempt in range(attempts):
            window_end = elapsed + self._prompts_s(prompts) + timeout
            if press is not None and elapsed <= press_at < window_end:
                await self.rt.clock.sleep(press_at - elapsed)
                digits, complete = collect_digits(press, finish_on_key, num_digits)
                self.rt.log.add(
                    EventKind.DIGITS_PRESSED,
                    call_uuid=self.call.call_uuid,
                    number=self.call.party_number,
                    keys=press,
                    digits=digits,
                    attempt=attempt + 1,
                )
                if not complete:
                    await self.rt.clock.sleep(digit_timeout)
                elapsed = press_at + (0.0 if complete else digit_timeout)
                if valid is None or all(d in valid for d in digits):
                    return digits
                continue  # invalid keys: Plivo plays invalidDigitsSound and tries again
            await self.rt.clock.sleep(window_end - elapsed)
            elapsed = window_end
        return None

    async def _input_action(
        self, action: str, method: str, redirect: bool, extra: dict[str, str], what: str
    ) -> StepOutcome:
        if not action:
            return None
        if redirect:
            return await self._fetch(action, method, "action", what, extra)
        await self.rt.notify(self.call, action, method, dict(self._params(), **extra), what=what)
        return None

    async def _get_digits(self, step: Step) -> StepOutcome:
        assert isinstance(step, GetDigits)
        digits = await self._collect(
            step.prompts,
            step.retries,
            step.timeout,
            step.finish_on_key,
            step.num_digits,
            step.digit_timeout,
            step.valid_digits,
        )
        if digits is None:
            return None  # no input after the retries: fall through to the next element
        return await self._input_action(
            step.action, step.method, step.redirect, {"Digits": digits}, "getdigits.action"
        )

    async def _get_input(self, step: Step) -> StepOutcome:
        assert isinstance(step, GetInput)
        if "dtmf" not in step.input_type:
            await self.rt.clock.sleep(self._prompts_s(step.prompts) + step.execution_timeout)
            return None  # simulated people say nothing recognisable
        digit_timeout = step.digit_end_timeout if step.digit_end_timeout is not None else 2.0
        digits = await self._collect(
            step.prompts,
            1,
            step.execution_timeout,
            step.finish_on_key,
            step.num_digits,
            digit_timeout,
            None,
        )
        if digits is None:
            return None
        return await self._input_action(
            step.action,
            step.method,
            step.redirect,
            {"InputType": "dtmf", "Digits": digits},
            "getinput.action",
        )

    # --- record -----------------------------------------------------------------------------

    async def _record(self, step: Step) -> StepOutcome:
        assert isinstance(step, Record)
        call, rt = self.call, self.rt
        script = call.script
        message = script.message_s if isinstance(script, LeadScript) else None
        spoken = min(message or 0.0, step.max_length)
        hang_up_after = (
            isinstance(script, LeadScript) and script.hangup_after_message and spoken > 0
        )
        if spoken >= step.max_length:
            length = step.max_length
        elif hang_up_after:
            length = spoken
        else:
            length = min(step.max_length, spoken + step.timeout)
        started = rt.clock.now()
        recording_id = new_id()

        def recording() -> Recording:
            talked = min(spoken, rt.clock.now() - started)
            return Recording(
                recording_id,
                rt.recording_url(recording_id, step.file_format),
                rt.clock.epoch(started),
                rt.clock.epoch(started + talked),
            )

        try:
            await rt.clock.sleep(length)
        except trio.Cancelled:
            # hung up (or transferred) mid-recording: the message so far is still delivered,
            # unless the simulator itself is shutting down (then nobody set a cause)
            if call.cause is not None or call.pending_transfer is not None:
                partial = recording()
                await rt.shielded(lambda: self._record_done(step, partial, redirect=False))
            raise
        if hang_up_after:
            call.end(normal_hangup(call.party_source))
            done = recording()
            await rt.shielded(lambda: self._record_done(step, done, redirect=False))
            return call.cause
        return await self._record_done(step, recording(), redirect=step.redirect)

    async def _record_done(self, step: Record, done: Recording, *, redirect: bool) -> StepOutcome:
        """Log the recording, send ``callbackUrl`` (in the background) and ``action``."""
        call, rt = self.call, self.rt
        rt.log.add(
            EventKind.RECORDING_FINISHED,
            call_uuid=call.call_uuid,
            number=call.party_number,
            what="record",
            recording_id=done.recording_id,
            url=done.url,
            duration_s=round(done.duration_s, 3),
        )
        fields = recording_params(done)
        if step.callback_url:
            params = dict(call_params(call.ident, "in-progress"), **fields)

            async def callback() -> None:
                await rt.notify(
                    call, step.callback_url, step.callback_method, params, what="record.callback"
                )

            rt.spawn(callback)
        if not step.action:
            return None
        extra = dict(fields, Digits="")
        if redirect and call.cause is None:
            return await self._fetch(step.action, step.method, "action", "record.action", extra)
        status = "completed" if call.cause is not None else "in-progress"
        params = dict(call_params(call.ident, status), **extra)
        await rt.notify(call, step.action, step.method, params, what="record.action")
        return None

    # --- conference / dial ------------------------------------------------------------------

    async def _conference(self, step: Step) -> StepOutcome:
        assert isinstance(step, Conference)
        return await run_conference(self.rt, self.rooms, self.call, step)

    async def _dial(self, step: Step) -> StepOutcome:
        assert isinstance(step, Dial)
        return await run_dial(self.rt, self.call, step)


async def run_documents(rt: Runtime, rooms: Rooms, call: SimCall) -> HangupCause:
    """Fetch the answer XML and execute documents until the call is to end; return the cause.

    Cancellation: the call's own scope (``SimCall.end``) cancels this; a transfer cancels only
    the running document.
    """
    return await _Executor(rt, rooms, call).run()
