"""Durable Object namespaces, ids, stubs and RPC, as Cloudflare documents them."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.twin.do_fixtures import Twin
from twin.clock import ManualClock
from twin.durable_objects import IDLE_EVICTION_SECONDS, DurableObjectNamespace
from twin.entrypoints import DurableObject
from twin.errors import DurableObjectError
from twin.http import Request, Response


class Counter(DurableObject):
    """Counts in memory and in storage, so tests can tell a fresh instance apart."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.in_memory = 0
        self.kept: list[Any] = []
        self.release = asyncio.Event()

    async def increment(self) -> dict[str, Any]:
        self.in_memory += 1
        stored = (await self.ctx.storage.get("count") or 0) + 1
        await self.ctx.storage.put("count", stored)
        return {"memory": self.in_memory, "stored": stored, "id": self.ctx.id.toString()}

    def keep(self, items: list[Any]) -> list[Any]:
        items.append("added by the object")
        self.kept = items
        return self.kept

    def kept_items(self) -> list[Any]:
        return self.kept

    def fail(self, message: str) -> None:
        raise ValueError(message)

    async def wait_for_release(self) -> str:
        await self.release.wait()
        return "released"

    def let_go(self) -> None:
        self.release.set()

    def work_in_background(self) -> None:
        self.ctx.waitUntil(self.release.wait())

    def reset(self, reason: str) -> None:
        self.ctx.abort(reason)

    async def ask_peer(self, name: str) -> dict[str, Any]:
        return await self.env.COUNTER.getByName(name).increment()

    def _secret(self) -> str:
        return "never over RPC"

    async def fetch(self, request: Request) -> Response:
        return Response(f"{request.method} {request.url} {await request.text()}")


class Loader(DurableObject):
    """Loads its state in blockConcurrencyWhile, as Cloudflare's examples do."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.value: Any = None
        ctx.blockConcurrencyWhile(self._load)

    async def _load(self) -> None:
        await asyncio.sleep(0)  # an await inside the block: events must still wait
        self.value = await self.ctx.storage.get("value") or "default"

    def read(self) -> Any:
        return self.value

    async def remember(self, value: Any) -> None:
        await self.ctx.storage.put("value", value)


@pytest.fixture
async def twin(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Twin]:
    async with Twin(tmp_path, clock) as running:
        yield running


@pytest.fixture
def counters(twin: Twin) -> DurableObjectNamespace:
    return twin.bind("COUNTER", Counter)


# ---- ids ----------------------------------------------------------------------------------


def test_ids_from_names_are_stable_64_hex_and_differ_by_name(
    counters: DurableObjectNamespace,
) -> None:
    first, again, other = (counters.idFromName(n) for n in ("alpha", "alpha", "beta"))
    assert len(first.toString()) == 64
    int(first.toString(), 16)
    assert first.toString() == again.toString()
    assert first.equals(again)
    assert not first.equals(other)
    assert first.name == "alpha"
    assert counters.idFromString(first.toString()).equals(first)


def test_id_strings_are_checked(twin: Twin, counters: DurableObjectNamespace) -> None:
    with pytest.raises(TypeError, match="must be 64 hex digits"):
        counters.idFromString("not-an-id")
    foreign = twin.bind("LOADER", Loader).idFromName("alpha").toString()
    with pytest.raises(TypeError, match="not valid for this namespace"):
        counters.idFromString(foreign)


def test_unique_ids_are_unique_and_belong_to_the_namespace(
    counters: DurableObjectNamespace,
) -> None:
    ids = {counters.newUniqueId().toString() for _ in range(20)}
    assert len(ids) == 20
    assert counters.idFromString(ids.pop()).name is None


# ---- addressing -------------------------------------------------------------------------


async def test_the_same_name_reaches_the_same_object(counters: DurableObjectNamespace) -> None:
    first = await counters.getByName("alpha").increment()
    second = await counters.get(counters.idFromName("alpha")).increment()
    assert (first.memory, second.memory) == (1, 2)
    assert first.id == second.id == counters.idFromName("alpha").toString()


async def test_different_names_reach_different_objects(
    counters: DurableObjectNamespace,
) -> None:
    alpha = await counters.getByName("alpha").increment()
    beta = await counters.getByName("beta").increment()
    assert (alpha.memory, beta.memory) == (1, 1)
    assert alpha.id != beta.id


async def test_a_stub_carries_its_id_and_name(counters: DurableObjectNamespace) -> None:
    stub = counters.getByName("alpha")
    assert stub.name == "alpha"
    assert stub.id.equals(counters.idFromName("alpha"))


async def test_objects_reach_each_other_through_env(counters: DurableObjectNamespace) -> None:
    result = await counters.getByName("alpha").ask_peer("beta")
    assert result.id == counters.idFromName("beta").toString()


async def test_stub_fetch_hands_the_object_a_request(counters: DurableObjectNamespace) -> None:
    stub = counters.getByName("alpha")
    response = await stub.fetch("https://do/path", method="POST", body="hi")
    assert await response.text() == "POST https://do/path hi"
    response = await stub.fetch(Request("https://do/other"))
    assert await response.text() == "GET https://do/other "


# ---- RPC semantics ----------------------------------------------------------------------


async def test_arguments_are_copied_at_the_call(counters: DurableObjectNamespace) -> None:
    stub = counters.getByName("alpha")
    items = ["mine"]
    pending = stub.keep(items)
    items.append("changed after the call")
    result = await pending
    assert items == ["mine", "changed after the call"]  # the object's append is not seen
    assert result == ["mine", "added by the object"]


async def test_results_are_copies(counters: DurableObjectNamespace) -> None:
    stub = counters.getByName("alpha")
    result = await stub.keep(["a"])
    result.append("changed by the caller")
    assert await stub.kept_items() == ["a", "added by the object"]


async def test_unsendable_arguments_are_refused_at_the_call(
    counters: DurableObjectNamespace,
) -> None:
    stub = counters.getByName("alpha")
    with pytest.raises(TypeError) as caught:
        stub.keep((1, 2))
    assert str(caught.value) == "<class 'tuple'> cannot be sent over RPC."


@pytest.mark.parametrize("name", ["missing", "_secret"])
async def test_methods_the_class_does_not_offer_are_refused(
    counters: DurableObjectNamespace, name: str
) -> None:
    with pytest.raises(DurableObjectError) as caught:
        await getattr(counters.getByName("alpha"), name)()
    assert str(caught.value) == f'The RPC receiver does not implement the method "{name}".'


async def test_an_exception_in_the_object_reaches_the_caller_by_message(
    counters: DurableObjectNamespace,
) -> None:
    with pytest.raises(DurableObjectError) as caught:
        await counters.getByName("alpha").fail("no such project")
    assert str(caught.value) == "no such project"
    assert caught.value.remote is True


# ---- lifecycle ----------------------------------------------------------------------------


async def test_an_evicted_object_is_rebuilt_and_only_storage_remains(
    counters: DurableObjectNamespace,
) -> None:
    stub = counters.getByName("alpha")
    await stub.increment()
    assert counters.evict(stub.id) is True
    after = await stub.increment()
    assert (after.memory, after.stored) == (1, 2)


async def test_an_object_with_work_in_flight_is_not_evicted(
    counters: DurableObjectNamespace,
) -> None:
    stub = counters.getByName("alpha")
    waiting = asyncio.ensure_future(stub.wait_for_release())
    await asyncio.sleep(0)
    assert counters.evict(stub.id) is False
    assert counters.evict_idle() == 0
    await stub.let_go()
    assert await waiting == "released"
    assert counters.evict_idle() == 1


async def test_wait_until_work_keeps_the_object_alive(counters: DurableObjectNamespace) -> None:
    stub = counters.getByName("alpha")
    await stub.work_in_background()
    assert counters.evict(stub.id) is False
    await stub.let_go()
    for _ in range(5):  # the background task ends a few loop turns after its release
        await asyncio.sleep(0)
    assert counters.evict(stub.id) is True


async def test_abort_resets_the_object(counters: DurableObjectNamespace) -> None:
    stub = counters.getByName("alpha")
    await stub.increment()
    with pytest.raises(DurableObjectError, match=r"^corrupt state$"):
        await stub.reset("corrupt state")
    assert (await stub.increment()).memory == 1


async def test_an_idle_object_hibernates_after_the_idle_timeout(
    twin: Twin, counters: DurableObjectNamespace
) -> None:
    stub = counters.getByName("alpha")
    await stub.increment()
    twin.clock.advance(IDLE_EVICTION_SECONDS / 2)
    assert (await stub.increment()).memory == 2
    twin.clock.advance(IDLE_EVICTION_SECONDS)
    assert (await stub.increment()).memory == 1


async def test_block_concurrency_while_holds_events_until_loaded(twin: Twin) -> None:
    loaders = twin.bind("LOADER", Loader)
    stub = loaders.getByName("a")
    assert await stub.read() == "default"
    await stub.remember("saved")
    assert loaders.evict(stub.id) is True
    assert await stub.read() == "saved"
