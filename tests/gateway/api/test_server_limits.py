"""The HTTP server's own limits, through real sockets: per-source connection shares, head and idle timeouts, head
size and header count, live streams per account, and the Host allow-list."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from gateway.api.app import DESCRIPTION
from gateway.api.hosts import default_allowed_hosts
from gateway.cli import build_parser
from gateway.subcommands import api_settings
from tests.support.api import Api, ApiFactory, bearer, problem, resident

OTHER_SOURCE = "127.0.0.2"  # another host, as far as the server can tell (Linux routes all of 127/8 to lo)


def _address(api: Api) -> tuple[str, int]:
    url = urlsplit(api.service.url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


@contextlib.asynccontextmanager
async def _sockets(api: Api, count: int) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    host, port = _address(api)
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(count):
            opened.append(await asyncio.open_connection(host, port))
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent before it closed the connection (fails if it is still open after ``within``)."""
    async with asyncio.timeout(within):
        data = b""
        while chunk := await reader.read(65536):
            data += chunk
        return data


def _raw_request(host: str, extra: bytes = b"") -> bytes:
    return b"GET /api/v1/me HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + extra + b"\r\n"


async def test_idle_sockets_from_one_source_do_not_lock_out_others(start_api: ApiFactory) -> None:
    async with start_api(max_connections=16, max_connections_per_source=8) as api, _sockets(api, 24) as held:
        # Past its share, a source's connections are closed at once (they would have filled the server: 16).
        results = await asyncio.gather(
            *(_closed_by_server(reader, 2.0) for reader, _ in held[8:]), return_exceptions=True
        )
        assert results == [b""] * 16
        # Another address (a resident) is still served while the first holds its share.
        other = httpx.AsyncHTTPTransport(local_address=OTHER_SOURCE)
        async with httpx.AsyncClient(transport=other, base_url=api.service.url + "/api/v1", timeout=5) as http:
            r = await http.get("/me", headers=bearer(api.operator))
            assert r.status_code == 200, r.text
        # And the first source gets a connection back as soon as it frees one.
        held[0][1].close()
        await asyncio.sleep(0.1)
        host, port = _address(api)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(_raw_request("127.0.0.1", b"Connection: close\r\n"))
        assert (await _closed_by_server(reader, 3.0)).startswith(b"HTTP/1.1 401")
        writer.close()


async def test_a_connection_without_a_request_is_closed_after_the_head_timeout(start_api: ApiFactory) -> None:
    async with start_api(head_timeout_seconds=0.5) as api, _sockets(api, 1) as [(reader, _)]:
        started = time.monotonic()
        assert await _closed_by_server(reader, 3.0) == b""
        assert 0.4 < time.monotonic() - started < 2.5


async def test_a_slow_head_is_closed_after_the_head_timeout(start_api: ApiFactory) -> None:
    async with start_api(head_timeout_seconds=1.0) as api, _sockets(api, 1) as [(reader, writer)]:
        started = time.monotonic()
        writer.write(b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def dribble() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(100):  # one header byte every 50 ms: never a complete head
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        task = asyncio.create_task(dribble(), name="dribble")
        try:
            assert await _closed_by_server(reader, 4.0) == b""
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert 0.9 < time.monotonic() - started < 3.0


async def test_an_idle_keep_alive_connection_is_closed(start_api: ApiFactory) -> None:
    async with start_api(keepalive_timeout_seconds=1) as api, _sockets(api, 1) as [(reader, writer)]:
        writer.write(_raw_request("127.0.0.1"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3.0)
        assert head.startswith(b"HTTP/1.1 401")
        started = time.monotonic()
        await _closed_by_server(reader, 4.0)  # the body, then the close
        assert 0.8 < time.monotonic() - started < 3.0


async def test_an_oversize_header_answers_431(start_api: ApiFactory) -> None:
    async with start_api(max_head_bytes=16_384) as api:
        r = await api.http.get("/me", headers={**bearer(api.operator), "X-Big": "a" * 20_000})
        assert r.status_code == 431
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "header_too_large"
        r = await api.http.get("/me", headers={**bearer(api.operator), "X-Big": "a" * 12_000})
        assert r.status_code == 200


async def test_huge_headers_are_cut_off_not_buffered(start_api: ApiFactory) -> None:
    chunk = b"a" * 65536

    async def send_huge(host: str, port: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            with contextlib.suppress(ConnectionError):
                writer.write(b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
                for _ in range(256):  # 16 MiB, written as it is taken (the client keeps no copy of its own)
                    writer.write(chunk)
                    await writer.drain()
            with contextlib.suppress(ConnectionError):
                return await _closed_by_server(reader, 10.0)
            return b""
        finally:
            writer.close()

    async with start_api(max_head_bytes=16_384) as api:
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        started = time.monotonic()
        answers = await asyncio.gather(*(send_huge(*_address(api)) for _ in range(4)))
        peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
        assert time.monotonic() - started < 10
        for answer in answers:  # 431, or the connection reset before the answer could be read
            assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
        # Four 16 MiB heads: the server kept at most about one socket read past the limit of each.
        assert peak_growth_mib < 24, peak_growth_mib
        r = await api.http.get("/me", headers=bearer(api.operator))
        assert r.status_code == 200


async def test_too_many_headers_answer_431(start_api: ApiFactory) -> None:
    async with start_api(max_headers=20) as api:
        r = await api.http.get("/me", headers={f"X-H{i}": "1" for i in range(30)})
        assert r.status_code == 431
        assert r.json()["code"] == "header_too_large"
        r = await api.http.get("/me", headers={f"X-H{i}": "1" for i in range(10)} | bearer(api.operator))
        assert r.status_code == 200


async def test_a_fifth_stream_of_one_account_answers_429(api: Api) -> None:
    alice = await resident(api)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(4):
            stream = await stack.enter_async_context(api.http.stream("GET", "/me/stream", headers=bearer(alice.token)))
            assert stream.status_code == 200
        body = problem(await api.http.get("/me/stream", headers=bearer(alice.token)), 429, "too_many_streams")
        assert body["limit"] == 4
    # Closed streams give their places back.
    async with api.http.stream("GET", "/me/stream", headers=bearer(alice.token)) as stream:
        assert stream.status_code == 200


async def test_streams_are_capped_per_source_address(start_api: ApiFactory) -> None:
    async with start_api(max_streams_per_source=2) as api:
        alice = await resident(api)
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(2):
                stream = await stack.enter_async_context(
                    api.http.stream("GET", "/me/stream", headers=bearer(alice.token))
                )
                assert stream.status_code == 200
            problem(await api.http.get("/me/stream", headers=bearer(alice.token)), 429, "too_many_streams")
            other = httpx.AsyncHTTPTransport(local_address=OTHER_SOURCE)
            async with (
                httpx.AsyncClient(transport=other, base_url=api.service.url + "/api/v1", timeout=5) as http,
                http.stream("GET", "/me/stream", headers=bearer(alice.token)) as stream,
            ):
                assert stream.status_code == 200


async def test_a_host_the_gateway_does_not_answer_to_gets_400(api: Api) -> None:
    _, port = _address(api)
    problem(
        await api.http.get("/me", headers={**bearer(api.operator), "Host": "rebind.attacker.example"}),
        400,
        "host_not_allowed",
    )
    problem(
        await api.http.get("/me", headers={**bearer(api.operator), "Host": f"evil.example:{port}"}),
        400,
        "host_not_allowed",
    )
    for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}", f"[::1]:{port}"):
        r = await api.http.get("/me", headers={"Host": host, **bearer(api.operator)})
        assert r.status_code == 200, (host, r.text)


async def test_allowed_hosts_are_configurable(start_api: ApiFactory) -> None:
    async with start_api(allowed_hosts=("gateway.example.org", "*.lan", "127.0.0.1")) as api:
        for host in ("gateway.example.org", "hub.lan:8080", "127.0.0.1"):
            assert (await api.http.get("/me", headers={"Host": host, **bearer(api.operator)})).status_code == 200, host
        problem(
            await api.http.get("/me", headers={**bearer(api.operator), "Host": "localhost"}), 400, "host_not_allowed"
        )


def test_the_connection_codes_are_documented() -> None:
    for code in ("header_too_large", "host_not_allowed", "too_many_streams"):
        assert f"`{code}`" in DESCRIPTION


def test_the_command_line_sets_the_allowed_hosts() -> None:
    args = build_parser().parse_args(["run", "--api-allowed-hosts", "gateway.example.org, *.lan"])
    assert api_settings(args, 0).allowed_hosts == ("gateway.example.org", "*.lan")
    assert api_settings(build_parser().parse_args(["run"]), 0).allowed_hosts is None
    assert {"127.0.0.1", "localhost"} <= set(default_allowed_hosts("192.168.1.10"))
