"""A fake OpenAI-compatible chat-completions server that the real `openai` client talks to over HTTP.

It listens on 127.0.0.1 (a random port) and answers `POST /v1/chat/completions` the way OpenAI
does: a `chat.completion` object with `usage`, `Authorization: Bearer <key>` checked (401 with
OpenAI's error body otherwise), and in JSON mode (`response_format: {"type": "json_object"}`) the
400 OpenAI gives when no message mentions JSON. Tests script what each next request gets:

    async with FakeOpenAI() as llm:
        llm.then_review(score=4, covered=["…"])           # a valid review in JSON
        llm.then_error(429, retry_after=0.01)             # then the client's retry gets the default
        ...
        llm.requests                                      # every request: headers and JSON body

Steps: `then_review`, `then_content` (any text: malformed JSON, a fenced block), `then_refusal`,
`then_error` (a status, with retry-after if given), `then_echo` (the content is the last user
message, exactly as received: a model that repeats its input), `then_hold` (a slow answer: the
request waits until `release()`, or until the client gives up). With no step queued a request gets
`default`, a valid review. `in_flight` and `most_in_flight` count requests being answered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "sk-fake-feedback-key-that-must-never-appear-in-logs"
MODEL = "fake-reviewer"


@dataclass(frozen=True)
class Completion:
    content: str | None
    refusal: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int = 120
    completion_tokens: int = 40


@dataclass(frozen=True)
class Error:
    status: int
    retry_after: float | None = None
    message: str = "scripted failure"


@dataclass(frozen=True)
class Echo:
    pass


@dataclass(frozen=True)
class Hold:
    then: Completion | Error | Echo


Step = Completion | Error | Echo | Hold


def review_json(
    score: object = 3,
    covered: object = ("attention weights are a softmax over scaled dot products",),
    missed: object = ("why the scores are divided by √d",),
    advice: object = "Explain the scaling factor next time.",
) -> str:
    covered = list(covered) if isinstance(covered, tuple) else covered
    missed = list(missed) if isinstance(missed, tuple) else missed
    return json.dumps({"score": score, "covered": covered, "missed": missed, "advice": advice})


@dataclass
class Request:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])


@dataclass
class FakeOpenAI:
    api_key: str = API_KEY
    model: str = MODEL
    default: Step = field(default_factory=lambda: Completion(review_json()))
    requests: list[Request] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._steps: deque[Step] = deque()
        self._gate = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting ------------------------------------------------------------------------

    def then(self, *steps: Step) -> FakeOpenAI:
        self._steps.extend(steps)
        return self

    def then_review(self, **fields: object) -> FakeOpenAI:
        return self.then(Completion(review_json(**fields)))

    def then_content(self, content: str, finish_reason: str = "stop") -> FakeOpenAI:
        return self.then(Completion(content, finish_reason=finish_reason))

    def then_refusal(self, refusal: str = "I can't help with that.") -> FakeOpenAI:
        return self.then(Completion(None, refusal=refusal))

    def then_error(self, status: int, retry_after: float | None = None) -> FakeOpenAI:
        return self.then(Error(status, retry_after))

    def then_echo(self) -> FakeOpenAI:
        return self.then(Echo())

    def then_hold(self, then: Completion | Error | Echo | None = None) -> FakeOpenAI:
        return self.then(Hold(then or Completion(review_json())))

    def release(self) -> None:
        """Let every held request (and any held later) answer."""
        self._gate.set()

    async def wait_for_requests(self, count: int) -> None:
        """Until `count` requests have arrived: a test's way to know the bot is waiting on the model."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    # --- the server -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
        if self._runner:
            await self._runner.cleanup()

    async def _chat_completions(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        async with self._arrived:
            self.requests.append(Request(dict(request.headers), body))
            self._arrived.notify_all()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
        if body.get("model") != self.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "invalid_request_error")
        messages = body.get("messages") or []
        json_mode = (body.get("response_format") or {}).get("type") == "json_object"
        if json_mode and not any("json" in str(m.get("content", "")).casefold() for m in messages):
            return _error(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                "invalid_request_error",
            )
        step = self._steps.popleft() if self._steps else self.default
        if isinstance(step, Hold):
            await self._gate.wait()
            step = step.then
        if isinstance(step, Error):
            headers = {} if step.retry_after is None else {"retry-after": f"{step.retry_after:g}"}
            return _error(step.status, step.message, "server_error", headers=headers)
        if isinstance(step, Echo):
            user = [m for m in messages if m.get("role") == "user"]
            step = Completion(user[-1]["content"] if user else "")
        return web.json_response(self._completion(body["model"], step))

    def _completion(self, model: str, step: Completion) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": step.content, "refusal": step.refusal},
                    "logprobs": None,
                    "finish_reason": step.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": step.prompt_tokens,
                "completion_tokens": step.completion_tokens,
                "total_tokens": step.prompt_tokens + step.completion_tokens,
            },
        }


def _error(
    status: int, message: str, kind: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)
