"""Test helpers: a scriptable fake application server that the simulator calls back.

:class:`FakeApplication` answers webhooks with XML you set per path (or with a function of the
request), records every request it gets, and checks each one's V3 signature with the Plivo
SDK's ``validate_v3_signature`` against the URL as it was called. Serve it with
:func:`simulator.server.serve_app`::

    fake = FakeApplication(auth_token=TOKEN)
    fake.base_url = await nursery.start(serve_app, fake.app, "127.0.0.1:0")
    fake.reply("/answer", "<Response><Hangup/></Response>")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import trio
from plivo.utils import validate_v3_signature
from quart import Response, request
from quart_trio import QuartTrio

__all__ = ["CapturedRequest", "FakeApplication", "Reply"]


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    method: str
    path: str
    url: str  # as called: base URL + path + raw query string
    args: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool | None  # None when no auth token was given to check with
    ma_signature_valid: bool | None

    @property
    def params(self) -> dict[str, str]:
        """Form fields for POST, query fields for GET."""
        return self.form if self.method == "POST" else self.args


@dataclass(frozen=True, slots=True)
class Reply:
    body: str = ""
    status: int = 200
    content_type: str = "text/xml"
    delay_s: float = 0.0  # real seconds before answering


Responder = str | Reply | Callable[[CapturedRequest], "str | Reply"]


@dataclass(eq=False)
class FakeApplication:
    """Webhook receiver for tests. Unknown paths get 200 with an empty body."""

    auth_token: str | None = None
    base_url: str = ""
    requests: list[CapturedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._replies: dict[str, Responder] = {}
        self._changed = trio.Event()
        self.app = self._make_app()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def reply(self, path: str, responder: Responder) -> None:
        """Answer requests to ``path`` with XML text, a :class:`Reply`, or a function."""
        self._replies[path] = responder

    def to(self, path: str) -> list[CapturedRequest]:
        """The requests received on ``path`` so far."""
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checked after every request; add a deadline."""
        while not predicate():
            await self._changed.wait()

    async def wait_requests(self, path: str, count: int = 1) -> list[CapturedRequest]:
        await self.wait_for(lambda: len(self.to(path)) >= count)
        return self.to(path)

    def _check(self, header: str, method: str, url: str, params: dict[str, str] | None) -> bool:
        assert self.auth_token is not None
        return bool(
            validate_v3_signature(
                method,
                url,
                request.headers.get("X-Plivo-Signature-V3-Nonce", ""),
                self.auth_token,
                request.headers.get(header, ""),
                params,
            )
        )

    def _make_app(self) -> QuartTrio:
        app = QuartTrio("fake_application")

        @app.route("/<path:path>", methods=["GET", "POST"])
        async def receive(path: str) -> Response:
            query = request.query_string.decode()
            url = f"{self.base_url}{request.path}" + (f"?{query}" if query else "")
            form: dict[str, str] = {}
            if request.method == "POST":
                form = dict((await request.form).items())
            valid = ma_valid = None
            if self.auth_token is not None:
                params = dict(form) if request.method == "POST" else None
                valid = self._check("X-Plivo-Signature-V3", request.method, url, params)
                params = dict(form) if request.method == "POST" else None
                ma_valid = self._check("X-Plivo-Signature-Ma-V3", request.method, url, params)
            captured = CapturedRequest(
                method=request.method,
                path=request.path,
                url=url,
                args=dict(request.args.items()),
                form=form,
                headers=dict(request.headers),
                signature_valid=valid,
                ma_signature_valid=ma_valid,
            )
            self.requests.append(captured)
            self._changed.set()
            self._changed = trio.Event()
            responder = self._replies.get(request.path, "")
            reply = responder(captured) if callable(responder) else responder
            if isinstance(reply, str):
                reply = Reply(reply)
            if reply.delay_s:
                await trio.sleep(reply.delay_s)
            return Response(reply.body, status=reply.status, content_type=reply.content_type)

        return app
