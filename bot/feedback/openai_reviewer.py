"""A Reviewer that asks any OpenAI-compatible chat-completions server (OpenAI, DeepSeek, Ollama, vLLM…).

It uses the official `openai` client (the optional extra `feedback`): retries of 429 and 5xx as
the client does them, honouring retry-after; JSON mode; the API key only ever in the client's
Authorization header. Around the client it adds what a chat bot needs: one deadline for the
whole request, retries included; at most `concurrency` requests at the model at once and a short
queue behind them (past it the member hears "busy" at once instead of waiting); and metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time

import openai
from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.core.feedback import Review, ReviewFailed, ReviewRequest
from bot.feedback.prompt import build_messages, parse_review

log = logging.getLogger(__name__)

CONCURRENCY = 4  # requests at the model at once
QUEUE = 32  # requests waiting for a slot; past this, "busy"
MAX_RETRIES = 2  # the client's own retries of 429, 5xx and connection errors
# Local servers such as Ollama take no key, but the client insists on one.
NO_KEY = "no-key"


class FeedbackMetrics:
    """The model's share of /metrics: requests, failures by kind, tokens used, latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("dailyq_feedback_requests", "Reviews asked of the model", registry=registry)
        self.failures = Counter(
            "dailyq_feedback_failures", "Reviews that failed, by kind", ["kind"], registry=registry
        )
        self.tokens = Counter(
            "dailyq_feedback_tokens",
            "Tokens the model reported using, by kind (prompt, completion)",
            ["kind"],
            registry=registry,
        )
        self.seconds = Histogram(
            "dailyq_feedback_seconds",
            "Time from asking the model to its answer, failures included",
            buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
            registry=registry,
        )


class OpenAIReviewer:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        metrics: FeedbackMetrics,
        concurrency: int = CONCURRENCY,
        queue: int = QUEUE,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self.model = model
        self._timeout = timeout
        self._metrics = metrics
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout, max_retries=max_retries
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._room = concurrency + queue
        self._admitted = 0  # at the model or waiting for a slot

    async def review(self, request: ReviewRequest) -> Review:
        if self._admitted >= self._room:
            self._metrics.failures.labels(kind="busy").inc()
            raise ReviewFailed("busy")
        self._admitted += 1
        try:
            async with self._slots:
                return await self._ask(request)
        finally:
            self._admitted -= 1

    async def close(self) -> None:
        await self._client.close()

    async def _ask(self, request: ReviewRequest) -> Review:
        self._metrics.requests.inc()
        started = time.perf_counter()
        try:
            review = await self._complete(request)
        except ReviewFailed as failure:
            self._metrics.failures.labels(kind=failure.kind).inc()
            log.warning("feedback: the model gave no review (%s)", failure)
            raise
        finally:
            self._metrics.seconds.observe(time.perf_counter() - started)
        return review

    async def _complete(self, request: ReviewRequest) -> Review:
        try:
            # The client's timeout bounds each attempt; this bounds them all, with the retries' waits.
            async with asyncio.timeout(self._timeout):
                response = await self._client.chat.completions.create(
                    model=self.model,
                    messages=build_messages(request),  # type: ignore[arg-type]
                    response_format={"type": "json_object"},
                )
        except (TimeoutError, openai.APITimeoutError):
            raise ReviewFailed("timeout", f"no answer within {self._timeout:g} s") from None
        except openai.APIStatusError as error:
            # Some servers (Azure's content filter among them) refuse with a 400 rather than a refusal.
            raise ReviewFailed("unavailable", f"HTTP {error.status_code}") from None
        except openai.APIConnectionError as error:
            raise ReviewFailed("unavailable", type(error).__name__) from None
        except openai.OpenAIError as error:  # e.g. a 200 whose body is not a chat completion
            raise ReviewFailed("invalid", type(error).__name__) from None
        if response.usage is not None:
            self._metrics.tokens.labels(kind="prompt").inc(response.usage.prompt_tokens or 0)
            self._metrics.tokens.labels(kind="completion").inc(response.usage.completion_tokens or 0)
        if not response.choices:
            raise ReviewFailed("invalid", "no choices")
        choice = response.choices[0]
        if choice.message.refusal or choice.finish_reason == "content_filter":
            raise ReviewFailed("refused")
        if choice.finish_reason == "length":
            raise ReviewFailed("invalid", "the reply was cut off")
        return parse_review(choice.message.content, request.answer)
