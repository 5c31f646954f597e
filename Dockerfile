# syntax=docker/dockerfile:1
# Two stages: the builder turns dailyq and every dependency into wheels; the final image only
# installs those wheels, so it carries no build tools, no source tree and no pip cache.

FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
# The bundled bank; pyproject.toml maps it into the wheel as bot/content.
COPY content ./content
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Mounted from the builder for this one step, so the wheels never become a layer of the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels dailyq
# A fixed uid, so files on the volume keep their owner across rebuilds. /data is created owned by
# it before VOLUME: a new named volume copies that ownership and the bot can write its database.
RUN groupadd --system --gid 10001 dailyq \
    && useradd --system --uid 10001 --gid dailyq --home-dir /data --no-create-home dailyq \
    && mkdir /data \
    && chown dailyq:dailyq /data
VOLUME /data
WORKDIR /data

ENV DAILYQ_DB=/data/dailyq.sqlite3 \
    DAILYQ_HTTP_PORT=8080
EXPOSE 8080

USER dailyq
# Healthy when /healthz answers 200 (database, scheduler, every platform). With DAILYQ_HTTP_PORT
# emptied in .env there is no endpoint to ask, and the check passes rather than restart-loop.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DAILYQ_HTTP_PORT', '').strip(); sys.exit(0 if not port else urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]

# SIGTERM (docker stop) is a graceful shutdown: in-flight sends finish, the database closes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["dailyq"]
CMD ["run"]
