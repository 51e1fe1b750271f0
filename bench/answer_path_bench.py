"""Micro benchmark of the lead-answer path's pure work: parse + verify signature + render XML.

Measures what one ``POST /plivo/answer`` costs in our own code, without HTTP or the service
(docs/contract.md §1.4 targets p99 < 50 ms for the whole answer at load). Run:

    .venv/bin/python -m bench.answer_path_bench [-n 20000]     (from the repo root)

Prints µs/op for each stage and for the whole path.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from orchestrator.carriers.plivo.signature import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    public_request_url,
    sign_v3,
    verify_v3,
)
from orchestrator.carriers.plivo.urls import LEAD_ANSWER_PATH, CallbackUrls
from orchestrator.carriers.plivo.webhooks import parse_lead_answer
from orchestrator.carriers.plivo.xml import lead_hold_xml

PUBLIC = "https://orch.example.com:8443"
TOKEN = "BenchAuthToken0123456789abcdefABCDEF"
NONCE = "05429567804466091622"
# a realistic inbound answer form (Plivo sends ~15-20 fields)
FORM = {
    "CallUUID": "4d04c52e-5b9c-11ee-8c99-0242ac120002",
    "From": "14155550100",
    "To": "18005550100",
    "Direction": "inbound",
    "CallStatus": "ringing",
    "Event": "StartApp",
    "CallerName": "+14155550100",
    "BillRate": "0.0085",
    "ParentAuthID": "MA" + "A" * 18,
    "SessionStart": "2024-01-01 10:00:00.000000",
    "STIRAttestation": "A",
    "STIRVerification": "Verified",
    "RequestUUID": "4d04c52e-5b9c-11ee-8c99-0242ac120002",
    "ALegUUID": "4d04c52e-5b9c-11ee-8c99-0242ac120002",
    "CallerCountry": "US",
}


def per_op_us(fn: Callable[[], object], n: int) -> float:
    fn()  # warm up
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20000, help="iterations per stage")
    n = parser.parse_args().n

    urls = CallbackUrls(PUBLIC)
    url = public_request_url(PUBLIC, LEAD_ANSWER_PATH)
    headers = {SIGNATURE_HEADER: sign_v3("POST", url, FORM, TOKEN, NONCE), NONCE_HEADER: NONCE}
    guid = str(uuid.uuid4())
    assert verify_v3("POST", url, headers, FORM, TOKEN)

    def whole() -> str:
        public = public_request_url(PUBLIC, LEAD_ANSWER_PATH)
        if not verify_v3("POST", public, headers, FORM, TOKEN):
            raise AssertionError("signature rejected")
        parse_lead_answer(FORM)
        return lead_hold_xml(guid, urls)

    stages: list[tuple[str, Callable[[], object]]] = [
        ("parse_lead_answer", lambda: parse_lead_answer(FORM)),
        ("verify_v3", lambda: verify_v3("POST", url, headers, FORM, TOKEN)),
        ("lead_hold_xml", lambda: lead_hold_xml(guid, urls)),
        ("whole answer path", whole),
    ]
    print(f"lead-answer path, {n} iterations per stage")
    for name, fn in stages:
        print(f"  {name:<20} {per_op_us(fn, n):8.1f} µs/op")


if __name__ == "__main__":
    main()
