"""No Docker engine runs here, so the Docker files are read and checked as data; the HEALTHCHECK
command is run for real against the health server."""

import asyncio
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.ops.health import Health, Metrics, serve
from tests.test_wheel import BUILD_CONTEXT

ROOT = Path(__file__).parents[1]


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def arguments(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for key, args in stage if key == keyword]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    pairs = (item.split("=", 1) for args in arguments(stage, "ENV") for item in shlex.split(args))
    return dict(pairs)


def test_dockerfile_builds_in_two_stages_and_runs_as_a_user():
    builder, final = dockerfile_stages()
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert final[0] == ("FROM", "python:3.11-slim")
    assert any("pip wheel" in run for run in arguments(builder, "RUN"))
    installs = [run for run in arguments(final, "RUN") if "pip install" in run]
    assert len(installs) == 1 and "from=builder" in installs[0] and "--no-index" in installs[0]

    users = arguments(final, "USER")
    assert users and users[-1] not in ("root", "0")
    assert any(re.search(rf"useradd\b.*\b{users[-1]}\b", run) for run in arguments(final, "RUN"))


def test_dockerfile_keeps_data_on_the_volume_and_serves_health():
    final = dockerfile_stages()[-1]
    env = env_of(final)
    assert arguments(final, "VOLUME") == ["/data"]
    assert Path(env["DAILYQ_DB"]).parent == Path("/data")
    assert arguments(final, "EXPOSE") == [env["DAILYQ_HTTP_PORT"]]
    assert "/healthz" in healthcheck_code()


def test_dockerfile_starts_the_installed_command():
    final = dockerfile_stages()[-1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = arguments(final, "ENTRYPOINT")
    (command,) = arguments(final, "CMD")
    assert json.loads(entrypoint) == ["dailyq"] and "dailyq" in scripts
    assert json.loads(command) == ["run"]
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context: the last pattern
    that matches it or a folder above it decides, `!` taking it back in; `**` spans folders."""
    def regex(pattern: str) -> re.Pattern[str]:
        parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
        wild = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        return re.compile("".join(wild.get(part, re.escape(part)) for part in parts) + "(?:/.*)?")

    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if regex(pattern.removeprefix("!")).fullmatch(path):
            ignored = not negated
    return ignored


def copied_sources() -> list[str]:
    return [
        source
        for stage in dockerfile_stages()
        for args in arguments(stage, "COPY")
        if not args.startswith("--from")
        for source in args.split()[:-1]
    ]


def test_the_build_context_has_what_the_dockerfile_copies_and_no_secrets():
    patterns = dockerignore_patterns()
    assert dockerignored(".env", patterns) and dockerignored("data/dailyq.sqlite3", patterns)
    assert not dockerignored(".env.example", patterns)
    copied = copied_sources()
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source, patterns), source


def test_the_image_gets_every_file_of_the_bundled_bank():
    # The builder copies exactly what tests/test_wheel.py builds its wheel from, bank included.
    assert sorted(copied_sources()) == sorted(BUILD_CONTEXT)
    bank = [path.relative_to(ROOT).as_posix() for path in (ROOT / "content").rglob("*") if path.is_file()]
    assert {"content/LICENSE", "content/NOTICE.md"} <= set(bank)
    assert len([path for path in bank if path.endswith(".md")]) > 20
    patterns = dockerignore_patterns()
    assert [path for path in bank if dockerignored(path, patterns)] == []


def healthcheck_code() -> str:
    (healthcheck,) = arguments(dockerfile_stages()[-1], "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    return command[2]


async def run_healthcheck(port: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "DAILYQ_HTTP_PORT"}
    if port is not None:
        env["DAILYQ_HTTP_PORT"] = port
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", healthcheck_code(), env=env, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


async def test_the_healthcheck_command_follows_healthz():
    health = Health()
    scheduler_alive = True

    async def scheduler_check() -> bool:
        return scheduler_alive

    health.add_check("scheduler", scheduler_check)
    runner = await serve(health, Metrics(), "127.0.0.1", 0)
    port = str(runner.addresses[0][1])
    try:
        assert await run_healthcheck(port) == 0
        scheduler_alive = False
        assert await run_healthcheck(port) != 0
    finally:
        await runner.cleanup()
    assert await run_healthcheck(port) != 0, "nothing listening must be unhealthy"
    assert await run_healthcheck(None) == 0, "with the endpoint switched off there is nothing to check"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_one_restarting_service_from_env_and_a_volume():
    config = compose()
    always = [name for name, service in config["services"].items() if "profiles" not in service]
    assert always == ["dailyq"]
    service = config["services"]["dailyq"]
    assert service["build"] == "."
    assert service["env_file"] in (".env", [".env"])
    assert service["restart"] == "unless-stopped"
    assert service["stop_signal"] == "SIGTERM" and service["stop_grace_period"] == "30s"
    named = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/data"]
    assert len(named) == 1 and named[0] in config["volumes"]
    # The compose file passes no configuration of its own: all of it comes from .env.
    assert "environment" not in service


def test_compose_postgresql_is_an_optional_profile_with_a_volume_and_a_healthcheck():
    config = compose()
    postgres = config["services"]["postgres"]
    assert postgres["profiles"] == ["postgresql"]
    assert postgres["restart"] == "unless-stopped"
    (volume,) = postgres["volumes"]
    name, target = volume.split(":")
    assert name in config["volumes"] and target == "/var/lib/postgresql/data"
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # The password comes from .env, never from the compose file.
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    # Without the profile the bot starts alone (on SQLite); with it, once the database is healthy.
    waits_for = config["services"]["dailyq"]["depends_on"]["postgres"]
    assert waits_for == {"condition": "service_healthy", "required": False}


def test_compose_content_mount_works_once_uncommented():
    text = (ROOT / "docker-compose.yml").read_text()
    commented = re.search(r"^(\s*)# (- \./content:/content:ro)$", text, re.MULTILINE)
    assert commented, "the content mount line is documented in docker-compose.yml"
    enabled = yaml.safe_load(text.replace(commented.group(0), commented.group(1) + commented.group(2)))
    assert "./content:/content:ro" in enabled["services"]["dailyq"]["volumes"]
    assert "DAILYQ_CONTENT=/content" in (ROOT / ".env.example").read_text()


def configuration_variables() -> set[str]:
    source = (ROOT / "bot" / "config.py").read_text()
    return set(re.findall(r'\bget\("([A-Z][A-Z0-9_]*)"\)', source))


def env_example_lines() -> list[str]:
    return (ROOT / ".env.example").read_text().splitlines()


VARIABLE_LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$")


def compose_variables() -> set[str]:
    """Variables docker-compose.yml itself takes from .env (such as the PostgreSQL password)."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))


def test_env_example_documents_every_variable_settings_reads():
    read = configuration_variables() | compose_variables()
    assert {"TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "DAILYQ_DB", "POSTGRES_PASSWORD"} <= read
    lines = env_example_lines()
    documented = {m.group(1) for line in lines if (m := VARIABLE_LINE.match(line))}
    assert read - documented == set(), "add these to .env.example"
    assert documented - read == set(), ".env.example lists variables nothing reads"
    for previous, line in zip(lines, lines[1:], strict=False):
        if VARIABLE_LINE.match(line):
            assert previous.startswith("# ") and not VARIABLE_LINE.match(previous), f"no comment above {line}"


def test_env_example_holds_no_secret_values():
    for line in env_example_lines():
        match = VARIABLE_LINE.match(line)
        if match and re.search("TOKEN|SECRET|PASSWORD", match.group(1)):
            assert match.group(2) == "", line
