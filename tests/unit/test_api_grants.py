"""The server API's one authorization function: LiveKit's scoping of grants."""

from __future__ import annotations

import pytest

from roomstreams.exceptions import PermissionDenied
from roomstreams.token import Claims, VideoGrants
from services.api.grants import METHOD_GRANTS, Grant, authorize

ROOM_METHODS = [m for m, g in METHOD_GRANTS.items() if g is Grant.ADMIN]


def _claims(**grants: object) -> Claims:
    return Claims(api_key="k", identity="svc", video=VideoGrants(**grants))  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ROOM_METHODS)
def test_room_admin_is_limited_to_its_room(method: str) -> None:
    authorize(_claims(room_admin=True, room="a"), method, "a")
    with pytest.raises(PermissionDenied, match="for 'a', not for room 'b'"):
        authorize(_claims(room_admin=True, room="a"), method, "b")
    with pytest.raises(PermissionDenied, match="for no room"):
        authorize(_claims(room_admin=True), method, "b")
    with pytest.raises(PermissionDenied, match="for no room"):
        authorize(_claims(room_admin=True), method, "")
    with pytest.raises(PermissionDenied, match="roomAdmin"):
        authorize(_claims(room_list=True, room_create=True, room="a"), method, "a")


def test_listing_rooms_needs_room_list() -> None:
    authorize(_claims(room_list=True), "ListRooms")
    with pytest.raises(PermissionDenied, match="roomList"):
        authorize(_claims(room_admin=True, room="a", room_create=True), "ListRooms")


@pytest.mark.parametrize("method", ["CreateRoom", "DeleteRoom"])
def test_creating_and_deleting_need_room_create(method: str) -> None:
    authorize(_claims(room_create=True), method, "a")
    with pytest.raises(PermissionDenied, match="roomCreate"):
        authorize(_claims(room_admin=True, room="a", room_list=True), method, "a")


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(PermissionDenied, match="not a server API method"):
        authorize(_claims(room_admin=True, room_list=True, room_create=True), "Nuke", "a")
