"""The SDK's agent side of an ACP connection, with ``session/delete`` routed too.

agent-client-protocol 0.12.1 is generated from ACP schema v1.19.0, which defines
``session/delete`` (``DeleteSessionRequest``, ``sessionCapabilities.delete``), but its
``build_agent_router`` routes every other session method and not this one, so a
client asking for it got ``-32601``. :class:`DuologueConnection` builds the SDK's own
router and adds that one route with the SDK's ``route_request``; everything else
(framing, dispatch, the client-side calls the agent makes) is the SDK's
``AgentSideConnection``.
"""

from __future__ import annotations

from typing import Any

from acp.agent.connection import AgentSideConnection
from acp.agent.router import build_agent_router
from acp.connection import Connection
from acp.meta import AGENT_METHODS
from acp.schema import DeleteSessionRequest
from acp.utils import normalize_result


class DuologueConnection(AgentSideConnection):
    def __init__(self, agent: Any, transport: Any) -> None:
        router = build_agent_router(agent, use_unstable_protocol=True)
        router.route_request(AGENT_METHODS["session_delete"], DeleteSessionRequest, agent, "delete_session",
                             adapt_result=normalize_result, unstable=True)
        self._conn = Connection(router, transport, listening=False)
        agent.on_connect(self)
