"""Who may call what on the server API: LiveKit's scoping of grants, in one place, for every
surface that exposes the API (the Twirp ``RoomService`` on the router's HTTP port and the
WebSocket ``/api`` on the gateways).

As LiveKit's server checks them (``EnsureAdminPermission`` / ``EnsureListPermission`` /
``EnsureCreatePermission``):

- listing rooms needs ``roomList``;
- creating and deleting rooms need ``roomCreate``;
- every call about one room (its participants, its metadata, sending data into it) needs
  ``roomAdmin`` **and** the token's ``room`` equal to that room. A ``roomAdmin`` token for
  room A, or one naming no room, can do nothing to room B; ``roomList`` alone lists rooms but
  not their participants.
"""

from __future__ import annotations

from enum import Enum

from roomstreams.exceptions import PermissionDenied
from roomstreams.token import Claims

__all__ = ["METHOD_GRANTS", "Grant", "authorize"]


class Grant(Enum):
    LIST = "roomList"
    CREATE = "roomCreate"
    ADMIN = "roomAdmin"


#: LiveKit's RoomService methods (Twirp names) and the grant each needs.
METHOD_GRANTS: dict[str, Grant] = {
    "CreateRoom": Grant.CREATE,
    "ListRooms": Grant.LIST,
    "DeleteRoom": Grant.CREATE,
    "ListParticipants": Grant.ADMIN,
    "GetParticipant": Grant.ADMIN,
    "RemoveParticipant": Grant.ADMIN,
    "MutePublishedTrack": Grant.ADMIN,
    "UpdateParticipant": Grant.ADMIN,
    "UpdateSubscriptions": Grant.ADMIN,
    "SendData": Grant.ADMIN,
    "UpdateRoomMetadata": Grant.ADMIN,
}


def authorize(claims: Claims, method: str, room: str = "") -> None:
    """Raise :class:`PermissionDenied` (with the reason) unless ``claims`` may call
    ``method`` (a name of :data:`METHOD_GRANTS`) about ``room``."""
    need = METHOD_GRANTS.get(method)
    if need is None:
        raise PermissionDenied(f"{method} is not a server API method")
    v = claims.video
    if need is Grant.LIST:
        if not v.room_list:
            raise PermissionDenied(f"permissions denied: {method} needs the roomList grant")
    elif need is Grant.CREATE:
        if not v.room_create:
            raise PermissionDenied(f"permissions denied: {method} needs the roomCreate grant")
    else:
        if not v.room_admin:
            raise PermissionDenied(f"permissions denied: {method} needs the roomAdmin grant")
        if not room or v.room != room:
            granted = repr(v.room) if v.room else "no room"
            raise PermissionDenied(
                f"permissions denied: the token's roomAdmin grant is for {granted}, "
                f"not for room {room!r}"
            )
