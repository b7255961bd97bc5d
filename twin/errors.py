"""Errors the local twin raises where Cloudflare's runtime would throw.

Messages copy Cloudflare's own texts, so code (and people) matching on them behave the
same locally as on Cloudflare, where they arrive as a `JsException`.

    TwinError               anything the twin rejects
    ├── D1Error             "D1_ERROR: …", "D1_TYPE_ERROR: …", "D1_EXEC_ERROR: …"
    ├── MigrationError      a D1 migration file failed; nothing of that file was applied
    ├── KVError             "KV PUT failed: 400 …" and other KV limits
    ├── R2Error             "put: … (10020)" and other R2 limits
    └── DurableObjectError  an RPC the object cannot take, or its own error (`remote`)
"""


class TwinError(Exception):
    """Base of every error raised by a binding twin."""


class D1Error(TwinError):
    pass


class MigrationError(TwinError):
    def __init__(self, file_name: str, sqlite_message: str) -> None:
        super().__init__(f"migration {file_name} failed: {sqlite_message}")
        self.file_name = file_name
        self.sqlite_message = sqlite_message


class KVError(TwinError):
    pass


class R2Error(TwinError):
    pass


class DurableObjectError(TwinError):
    """A Durable Object call, storage or SQL operation failed.

    `remote` is True when the object's own code raised (Cloudflare's `.remote`), False
    when the runtime refused the call.
    """

    def __init__(self, message: str, *, remote: bool = False) -> None:
        super().__init__(message)
        self.remote = remote
