"""HubQuery's page (``/ask``) and API (``POST /api/v1/hubquery``, ``…/audio``), for ``orders.read``.

A spoken question is a WAV recording sent as the request's body (the page
reads the chosen file and posts it, as the import pages do): no multipart
parser, and a body past :data:`MAX_AUDIO_BYTES` is refused before it is read
whole. The answer carries what was heard beside the answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.hubquery import speech
from smart.hub.hubquery.answers import HubQuery
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields

#: 30 s of 48 kHz stereo 16-bit is 5.8 MB; a question is a few seconds.
MAX_AUDIO_BYTES = 6 * 1024 * 1024


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=300)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_AUDIO_BYTES:
        raise HTTPException(413, f"audio: larger than {MAX_AUDIO_BYTES} bytes; send one short question")
    read = bytearray()
    async for chunk in request.stream():
        read += chunk
        if len(read) > MAX_AUDIO_BYTES:
            raise HTTPException(413, f"audio: larger than {MAX_AUDIO_BYTES} bytes; send one short question")
    if not read:
        raise HTTPException(422, "audio: the body is empty; send a WAV recording of the question")
    return bytes(read)


def router(query: HubQuery, guard: Guard) -> APIRouter:
    api = APIRouter()
    reader = Depends(guard.requires(Permission.ORDERS_READ))

    async def _ask(text: str) -> dict[str, Any]:
        try:
            answer = await run_in_threadpool(query.ask, text)
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return dataclasses.asdict(answer)

    @api.post("/api/v1/hubquery")
    async def ask(body: Question, login: Login = reader) -> dict[str, Any]:
        return await _ask(body.question)

    @api.post("/api/v1/hubquery/audio")
    async def hear(request: Request, login: Login = reader) -> dict[str, Any]:
        """A spoken question as a WAV body; the answer with ``heard``, the words recognised."""
        audio = await _body(request)
        try:
            answer = await run_in_threadpool(query.hear, audio)
        except speech.SpeechError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return dataclasses.asdict(answer)

    @api.get("/ask", response_class=HTMLResponse)
    async def page(request: Request, login: Login = reader) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "hubs/ask.html", {"page": "Hey SMART", "answer": None})

    @api.post("/ask", response_class=HTMLResponse)
    async def asked(request: Request, login: Login = reader) -> HTMLResponse:
        answer = await _ask((await form_fields(request)).get("question", ""))
        return TEMPLATES.TemplateResponse(request, "hubs/ask.html", {"page": "Hey SMART", "answer": answer})

    return api
