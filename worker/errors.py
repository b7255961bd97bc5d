"""The worker's one error tree: what domain code raises for anyone else's mistake.

    SamError(code, message)          a stable machine code and a sentence for a person
    ├── InvalidInput                 the request itself is wrong (a field, a size, a spec)
    ├── Unauthorized                 no credential, or one that is not valid
    ├── Forbidden                    a valid caller that may not do this
    ├── NotFound                     unknown, or someone else's (the two look the same)
    ├── MethodNotAllowed(allowed)    the resource exists, this method does not
    ├── Conflict                     the current state forbids it (busy, stopped, taken)
    │   └── InvalidTransition        a state change its allowed-transitions table refuses
    ├── TooLarge                     a request body over the deployment's limit
    ├── RateLimited(retry_after)     too many requests; try again after that many seconds
    ├── Unavailable                  this deployment cannot do it now (capacity, settings)
    └── UpstreamFailed               a third party or a node's agent failed or refused

Domain modules raise these (or small subclasses with a fixed code and message) and never
name an HTTP status: the HTTP edge maps each kind to a status in one place
(worker/http_errors.py), which also answers anything else as a logged 500.
"""


class SamError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(SamError):
    pass


class Unauthorized(SamError):
    pass


class Forbidden(SamError):
    pass


class NotFound(SamError):
    pass


class MethodNotAllowed(SamError):
    def __init__(self, code: str, message: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(code, message)
        self.allowed = allowed  # announced in an Allow header when given


class Conflict(SamError):
    pass


class InvalidTransition(Conflict):
    def __init__(self, kind: str, current: str, new: str) -> None:
        super().__init__(
            "invalid_state_transition", f"A {kind} cannot go from {current!r} to {new!r}."
        )
        self.kind = kind
        self.current = current
        self.new = new


class TooLarge(SamError):
    pass


class RateLimited(SamError):
    def __init__(self, code: str, message: str, retry_after_seconds: int) -> None:
        super().__init__(code, message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(SamError):
    pass


class UpstreamFailed(SamError):
    pass
