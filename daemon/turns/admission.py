"""What a ``session/send`` asks of its model, checked before the prompt is written.

A depth of thinking or an image the chosen model cannot honour is refused with
INVALID_PARAMS naming the field, so nothing is stored that the turn could not do.
``auto`` picks a model per turn later, so it takes anything: a depth is applied
where the picked model allows it, and a picked model that reads no images gets a
note in their place (docs/protocol.md, "Images").
"""

from __future__ import annotations

from duologue.protocol.entities import AUTO, ThinkingDepth
from duologue.protocol.errors import ErrorCode, RpcError

from ..catalog import Catalog


def check_thinking(catalog: Catalog, depth: ThinkingDepth, choice: str) -> None:
    if choice == AUTO:
        return
    model = catalog.resolve(choice)
    if model.thinking == "none":
        problem = f"{model.id} does not think; leave out thinking"
    elif depth == "off" and model.thinking == "always":
        problem = f"{model.id} always thinks; ask for low instead of off"
    else:
        return
    raise RpcError(ErrorCode.INVALID_PARAMS, problem, {"path": "$.thinking"})


def check_images(catalog: Catalog, choice: str) -> None:
    if choice == AUTO:
        return
    model = catalog.resolve(choice)
    if not model.images:
        takers = [mi.short_name for mi in catalog.models if mi.images][:3]
        raise RpcError(ErrorCode.INVALID_PARAMS,
                       f"{model.id} does not take images; send them to a model that does"
                       + (f" ({', '.join(takers)})" if takers else ""), {"path": "$.images"})
