"""The pytest side of the real-Pyodide harness: one Node process (host/main.mjs) that
loads the Worker's dry-run bundle under Pyodide 314 with workerd's D1/KV/R2 (miniflare),
and answers one JSON request per line."""

import base64
import json
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.wrangler import PROJECT_ROOT, WRANGLER_CONFIG

HOST = Path(__file__).parent / "host" / "main.mjs"
CLIENT_IP_HEADER = "cf-connecting-ip"
LOOPBACK_PEER = "127.0.0.1"
RUNTIME = Path(__file__).parent / "runtime"
MAINS = Path(__file__).parent / "mains"  # main modules of the harness's own checks
MAIN_MODULE = Path(WRANGLER_CONFIG["main"]).stem  # uploaded at the bundle's root
STDERR_TAIL_LINES = 200
MAX_LOG_LINE_CHARS = 2000  # a JS error prints its (minified) source line
WEB_SOCKET_WAIT_SECONDS = 10.0  # how long a test waits for the next WebSocket event


class HostError(Exception):
    """The host answered a request with an error (the Worker raised, or the host could not)."""


class MainModuleUnavailable(HostError):
    """The main module did not import, so no event can reach the Worker."""


@dataclass(frozen=True)
class ImportReport:
    main: str
    imported: bool
    error: str | None
    refused: list[str]  # top-level entropy calls no runtime patch allows
    import_ms: float
    import_times: list[str]  # CPython's -X importtime lines for the main module's import

    @property
    def failure(self) -> str:
        """The import error's last line (the exception), or "" when the import succeeded."""
        return (self.error or "").strip().splitlines()[-1] if self.error else ""

    def milliseconds_by_package(self) -> dict[str, float]:
        """Self time of every imported module, summed per top-level package, slowest first."""
        totals: dict[str, float] = {}
        for line in self.import_times:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            if not self_us.strip().isdigit():
                continue  # the header line
            package = name.strip().split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(self_us) / 1000
        return dict(sorted(totals.items(), key=lambda item: -item[1]))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    web_socket: bool
    web_socket_replies: list[str]  # the answers to `web_socket_texts`, sent on a 101's socket

    def json(self) -> Any:
        return json.loads(self.body)


class WebSocketClosed(AssertionError):
    """A message was expected, and the Worker closed the socket instead."""


@dataclass(frozen=True)
class Operation:
    """One host operation, for `PyodideWorker.concurrently`."""

    op: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    result: Any = None
    error: str = ""


def http_response(answer: dict[str, Any]) -> HttpResponse:
    """The host's answer to a `fetch` operation."""
    return HttpResponse(
        status=answer["status"],
        headers=dict(answer["headers"]),
        body=base64.b64decode(answer["body"]),
        web_socket=answer["web_socket"],
        web_socket_replies=answer["web_socket_replies"],
    )


class ClientWebSocket:
    """The client end of a WebSocket the Worker accepted (kept in the host): what a
    browser would send and receive on it."""

    def __init__(self, worker: "PyodideWorker", number: int) -> None:
        self._worker = worker
        self._number = number

    def send(self, text: str) -> None:
        self._worker.call("ws_send", socket=self._number, data=text)

    def next_event(self, timeout: float = WEB_SOCKET_WAIT_SECONDS) -> dict[str, Any]:
        """`{"type": "message", "data"}` or `{"type": "close", "code", "reason"}`."""
        return self._worker.call("ws_next", socket=self._number, timeout_ms=timeout * 1000)

    def receive(self, timeout: float = WEB_SOCKET_WAIT_SECONDS) -> str:
        event = self.next_event(timeout)
        if event["type"] != "message":
            raise WebSocketClosed(f"the Worker closed the socket: {event}")
        return event["data"]

    def receive_json(self, timeout: float = WEB_SOCKET_WAIT_SECONDS) -> Any:
        return json.loads(self.receive(timeout))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._worker.call("ws_close", socket=self._number, code=code, reason=reason)

    def drop(self) -> None:
        """Vanish without a Close frame, as a lost connection does."""
        self._worker.call("ws_drop", socket=self._number)


@dataclass(frozen=True)
class WebSocketAnswer:
    """The answer to a WebSocket request: a 101 with the client end, or a refusal."""

    status: int
    headers: dict[str, str]
    body: bytes
    socket: ClientWebSocket | None

    def json(self) -> Any:
        return json.loads(self.body)


class PyodideWorker:
    """One host process: `fetch`, `scheduled` and Durable Object calls into the Worker."""

    def __init__(
        self,
        bundle: Path,
        main: str = MAIN_MODULE,
        extra_paths: tuple[Path, ...] = (),
        vars: dict[str, str] | None = None,
        services: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        loopback_cas: tuple[Path, ...] = (),
        durable_objects: dict[str, str] | None = None,
    ):
        """`vars` override wrangler.toml's; `services` bind a name to a loopback origin;
        `secrets` are what `wrangler secret put` gives a deployed Worker; `loopback_cas`
        vouch for https upstreams named `*.localhost` (node agents), as in the twin;
        `durable_objects` (binding → class) replace wrangler.toml's, for another main."""
        config = WRANGLER_CONFIG
        if durable_objects is not None:
            bindings = [{"name": name, "class_name": cls} for name, cls in durable_objects.items()]
            config = {**config, "durable_objects": {"bindings": bindings}}
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._process = subprocess.Popen(
            ["node", str(HOST)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._keep_stderr, daemon=True).start()
        self._next_id = 0
        setup = {
            "bundle": str(bundle),
            "project": str(PROJECT_ROOT),
            "runtime": str(RUNTIME),
            "main": main,
            "extra_paths": [str(path) for path in extra_paths],
            "config": config,
            "vars": vars or {},
            "services": services or {},
            # What `wrangler secret put` gives a deployed Worker: strings in its env.
            "secrets": secrets or {},
            "loopback_cas": [str(path) for path in loopback_cas],
        }
        self._send(setup)
        self._receive(0)
        self.report = ImportReport(**self.call("report"))

    def _keep_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line.rstrip("\n")[:MAX_LOG_LINE_CHARS])

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _receive(self, request_id: int) -> Any:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise HostError(f"the harness host exited ({code}):\n{self.stderr_tail()}")
        answer = json.loads(line)
        assert answer["id"] == request_id, answer
        if not answer["ok"]:
            error = answer["error"]
            kind = MainModuleUnavailable if "did not import" in error else HostError
            raise kind(error)
        return answer["result"]

    def require_main_module(self) -> None:
        """Raise MainModuleUnavailable, as any event would, if the main module did not import."""
        if not self.report.imported:
            raise MainModuleUnavailable(f"the main module {self.report.main} did not import")

    def call(self, op: str, **args: Any) -> Any:
        self._next_id += 1
        self._send({"id": self._next_id, "op": op, **args})
        return self._receive(self._next_id)

    def fetch(
        self,
        url: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        web_socket_texts: tuple[str, ...] = (),
    ) -> HttpResponse:
        request = self.request(url, method, headers, body, web_socket_texts)
        return http_response(self.call(request.op, **request.args))

    @staticmethod
    def request(
        url: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        web_socket_texts: tuple[str, ...] = (),
    ) -> Operation:
        """An HTTP request to the Worker, for `concurrently` (`http_response` reads its
        outcome's result)."""
        encoded = base64.b64encode(body).decode() if body is not None else None
        # Cloudflare's edge always names the peer; here the peer is this machine.
        headers = {CLIENT_IP_HEADER: LOOPBACK_PEER, **(headers or {})}
        args = {"method": method, "url": url, "headers": headers, "body": encoded}
        return Operation("fetch", {**args, "web_socket_texts": list(web_socket_texts)})

    def open_web_socket(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        object: tuple[str, str] | None = None,
    ) -> WebSocketAnswer:
        """A WebSocket request to the Worker's route `url`, or to the object `(binding,
        name)`'s own `fetch` when given; a 101's client end stays open in the host."""
        headers = {CLIENT_IP_HEADER: LOOPBACK_PEER, **(headers or {})}
        target = {"binding": object[0], "name": object[1]} if object else None
        answer = self.call("ws_connect", url=url, headers=headers, object=target)
        number = answer["socket"]
        return WebSocketAnswer(
            status=answer["status"],
            headers=dict(answer["headers"]),
            body=base64.b64decode(answer["body"]),
            socket=ClientWebSocket(self, number) if number is not None else None,
        )

    def concurrently(self, *operations: Operation) -> list[Outcome]:
        """Run the operations at once (concurrent events); each one's outcome, in order."""
        batch = [{"op": operation.op, **operation.args} for operation in operations]
        return [Outcome(**outcome) for outcome in self.call("all", operations=batch)]

    @staticmethod
    def rpc(binding: str, name: str, method: str, *args: Any) -> Operation:
        """A Durable Object RPC call, for `concurrently`."""
        return Operation(
            "do_call", {"binding": binding, "name": name, "method": method, "args": list(args)}
        )

    def object_sql(self, binding: str, name: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        """SQL on the object's storage outside any event (constructing it if need be): how
        a test rolls back what the object persisted, as a crash before the write would."""
        return self.call("do_sql", binding=binding, name=name, sql=sql, params=list(params))

    def evict(self, binding: str, name: str) -> bool:
        """Drop the object's instance as workerd does when it hibernates (storage and
        accepted WebSockets stay); whether it had one."""
        return self.call("do_evict", binding=binding, name=name)

    def scheduled(self, cron: str, scheduled_time_ms: float = 0) -> None:
        self.call("scheduled", cron=cron, scheduled_time=scheduled_time_ms)

    def durable_object(self, binding: str, name: str, method: str, *args: Any) -> Any:
        return self.call("do_call", binding=binding, name=name, method=method, args=list(args))

    def run_alarm(self, binding: str, name: str, retry: bool = False) -> bool:
        """Fire the object's alarm now, if one is set; whether one was. `retry`: run the
        handler as workerd re-runs an alarm whose handler failed (a crash mid-step)."""
        return self.call("do_alarm", binding=binding, name=name, retry=retry)

    def alarm_at(self, binding: str, name: str) -> float | None:
        return self.call("do_alarm_at", binding=binding, name=name)

    def crypto(self, name: str, **args: Any) -> Any:
        """A function of runtime/_harness_crypto.py: the Worker's crypto on WebCrypto."""
        return self.call("crypto", name=name, args=args)

    def r2_put(self, binding: str, key: str, body: bytes) -> None:
        self.call("r2_put", binding=binding, key=key, body=base64.b64encode(body).decode())

    def kv_keys(self, binding: str, prefix: str = "") -> list[str]:
        return self.call("kv_keys", binding=binding, prefix=prefix)

    def d1(self, binding: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.call("d1", binding=binding, sql=sql, params=list(params))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
