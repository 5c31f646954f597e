"""Answer feedback from a model: the implementations of bot.core.feedback.Reviewer."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry

from bot.config import Settings

if TYPE_CHECKING:
    from bot.feedback.openai_reviewer import OpenAIReviewer

log = logging.getLogger(__name__)

MISSING_EXTRA = (
    "feedback: DAILYQ_LLM_URL is set but the openai package is not installed "
    "(pip install 'dailyq[feedback]'); feedback stays off"
)


def available(settings: Settings) -> bool:
    """Whether feedback can work: a model is configured and the `feedback` extra is installed."""
    return settings.feedback_configured and importlib.util.find_spec("openai") is not None


def _server(url: str) -> str:
    """The URL without what may carry a key (`user:key@`, a query, a fragment): scheme, host, port, path."""
    parts = urlsplit(url)
    host_and_port = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host_and_port, parts.path, "", ""))


def reviewer_from(settings: Settings, registry: CollectorRegistry | None = None) -> OpenAIReviewer | None:
    """The configured model's reviewer; None when feedback is not configured or the extra is missing.

    Its metrics go to `registry` (the one /metrics serves), or to a private one.
    """
    if not settings.feedback_configured:
        return None
    if not available(settings):
        log.warning(MISSING_EXTRA)
        return None
    from bot.feedback.openai_reviewer import FeedbackMetrics, OpenAIReviewer

    assert settings.llm_url and settings.llm_model
    log.info("feedback: reviews by %s at %s", settings.llm_model, _server(settings.llm_url))
    return OpenAIReviewer(
        base_url=settings.llm_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout,
        metrics=FeedbackMetrics(registry or CollectorRegistry()),
    )
