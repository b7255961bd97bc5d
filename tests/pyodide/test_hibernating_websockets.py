"""The host's hibernating WebSockets, as workerd has them, under real Pyodide: a Durable
Object accepts sockets with `ctx.acceptWebSocket`, finds them by tag after its instance is
evicted, keeps attachments with the socket, and gets messages, closes and dropped
connections through its handlers (the main module is mains/socket_room.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pyodide.harness import MAINS, ClientWebSocket, PyodideWorker

BINDING = "ROOM"
ORIGIN = "https://rooms.example.org"


@pytest.fixture(scope="module")
def rooms(bundle: Path) -> Iterator[PyodideWorker]:
    worker = PyodideWorker(
        bundle, main="socket_room", extra_paths=(MAINS,), durable_objects={BINDING: "SocketRoom"}
    )
    yield worker
    worker.close()


def join(worker: PyodideWorker, room: str, user: str) -> ClientWebSocket:
    answer = worker.open_web_socket(f"{ORIGIN}/rooms/{room}?user={user}")
    assert answer.status == 101, answer.body
    assert answer.socket is not None
    return answer.socket


def test_a_socket_the_object_accepts_reaches_the_client_through_the_worker(
    rooms: PyodideWorker,
) -> None:
    ada = join(rooms, "r1", "ada")

    ada.send("who")

    who = ada.receive_json()
    assert who["attachment"] == {"user": "ada"}
    assert who["tags"] == ["viewer", "user:ada"]
    assert who["viewers"] == 1


def test_a_request_to_the_object_itself_gets_its_socket(rooms: PyodideWorker) -> None:
    answer = rooms.open_web_socket(f"{ORIGIN}/rooms/r2?user=bo", object=(BINDING, "r2"))
    assert answer.status == 101
    assert answer.socket is not None

    answer.socket.send("who")

    assert answer.socket.receive_json()["attachment"] == {"user": "bo"}


def test_a_request_without_upgrade_gets_the_objects_refusal_and_no_socket(
    rooms: PyodideWorker,
) -> None:
    answer = rooms.open_web_socket(f"{ORIGIN}/rooms/r3", headers={"upgrade": "h2c"})

    assert answer.status == 426
    assert answer.socket is None
    assert answer.body == b"a room is joined with a WebSocket"


def test_messages_go_to_every_viewer_or_to_one_tag(rooms: PyodideWorker) -> None:
    ada, bo = join(rooms, "r4", "ada"), join(rooms, "r4", "bo")

    ada.send("say:hello")
    ada.send("to:bo:psst")

    assert ada.receive() == "ada: hello"
    assert bo.receive() == "ada: hello"
    assert bo.receive() == "ada (only to bo): psst"
    ada.send("who")
    assert ada.receive_json()["viewers"] == 2  # nothing else reached ada


def test_an_evicted_object_keeps_its_sockets_and_a_fresh_instance_answers(
    rooms: PyodideWorker,
) -> None:
    ada, bo = join(rooms, "r5", "ada"), join(rooms, "r5", "bo")
    ada.send("who")
    before = ada.receive_json()["instance"]

    assert rooms.evict(BINDING, "r5")
    assert not rooms.evict(BINDING, "r5")  # nothing left to drop until the next event

    bo.send("who")
    after = bo.receive_json()
    assert after["instance"] > before
    assert after["attachment"] == {"user": "bo"}
    assert after["tags"] == ["viewer", "user:bo"]
    assert after["viewers"] == 2
    bo.send("say:still here")
    assert ada.receive() == "bo: still here"


def test_a_close_reaches_the_object_which_tells_the_others(rooms: PyodideWorker) -> None:
    ada, bo = join(rooms, "r6", "ada"), join(rooms, "r6", "bo")
    rooms.evict(BINDING, "r6")  # the close wakes a fresh instance

    ada.close(4000, "bye")

    assert bo.receive() == "left: ada 4000 bye clean=True"
    bo.send("who")
    assert bo.receive_json()["viewers"] == 1


def test_a_dropped_connection_reaches_the_objects_error_handler(rooms: PyodideWorker) -> None:
    ada, bo = join(rooms, "r7", "ada"), join(rooms, "r7", "bo")

    ada.drop()

    assert bo.receive() == "dropped: ada (WebSocket disconnected without sending Close frame.)"
    bo.send("who")
    assert bo.receive_json()["viewers"] == 1


def test_the_object_closing_a_socket_reaches_the_client(rooms: PyodideWorker) -> None:
    ada, bo = join(rooms, "r8", "ada"), join(rooms, "r8", "bo")

    ada.send("leave")

    assert ada.next_event() == {"type": "close", "code": 4001, "reason": "asked to leave"}
    assert bo.receive() == "left: ada 4001 asked to leave clean=True"  # the client's answer
    bo.send("who")
    assert bo.receive_json()["viewers"] == 1


def test_what_workerd_refuses_the_host_refuses(rooms: PyodideWorker) -> None:
    refusals = rooms.durable_object(BINDING, "r9", "refusals")

    assert set(refusals) == {
        "python_list_tags",
        "eleven_tags",
        "python_dict_attachment",
        "oversized_attachment",
        "get_tags_of_a_plain_socket",
    }
    assert "parameter 2 is not of type 'Array'" in refusals["python_list_tags"]
    assert "more than 10 tags" in refusals["eleven_tags"]
    assert "could not be cloned" in refusals["python_dict_attachment"]
    assert "limited to 2048 bytes" in refusals["oversized_attachment"]
    assert "acceptWebSocket()" in refusals["get_tags_of_a_plain_socket"]
