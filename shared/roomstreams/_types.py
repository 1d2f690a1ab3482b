"""Identifier types shared by the client, the gateway and the router."""

from __future__ import annotations

from typing import NewType

__all__ = ["GatewayId", "ParticipantIdentity", "RoomName", "SessionId", "StreamId", "Topic"]

StreamId = NewType("StreamId", str)
Topic = NewType("Topic", str)
ParticipantIdentity = NewType("ParticipantIdentity", str)
RoomName = NewType("RoomName", str)
SessionId = NewType("SessionId", str)
GatewayId = NewType("GatewayId", str)
