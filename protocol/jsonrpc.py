"""JSON-RPC 2.0 framing, sans-IO: bytes in, typed calls out; results in, bytes out.

A frame is one UTF-8 JSON value: a request object, a notification, or a batch (an
array of them). :func:`parse_frame` never raises: every malformed input becomes an
:class:`Invalid` item carrying the error to send back. The ZeroMQ transport, the
stdio bridge and the tests all drive these same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from .errors import ErrorCode, RpcError
from .methods import METHODS, NOTIFICATIONS, event_method

RequestId = int | str


class _Envelope(msgspec.Struct):
    """A request as it arrives; unknown top-level members are tolerated."""

    jsonrpc: str
    method: str
    id: RequestId | None | msgspec.UnsetType = msgspec.UNSET
    params: msgspec.Raw = msgspec.Raw(b"{}")


class _ErrorObject(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    data: Any = None


class _Reply(msgspec.Struct):
    """A response or notification as a client receives it."""

    jsonrpc: str = "2.0"
    id: RequestId | None | msgspec.UnsetType = msgspec.UNSET
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: _ErrorObject | msgspec.UnsetType = msgspec.UNSET
    method: str | msgspec.UnsetType = msgspec.UNSET
    params: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


# A frozen Struct rather than a dataclass: a dataclass is made by compiling its methods
# at import, some 30 times the cost, paid by every one-shot client at start-up.
class Call(msgspec.Struct, frozen=True):
    """A well-formed request (``id`` set) or notification (``id`` is None) whose
    params have not been decoded yet: that is :func:`decode_params`' job."""

    id: RequestId | None
    method: str
    params: msgspec.Raw

    @property
    def is_notification(self) -> bool:
        return self.id is None


class Invalid(msgspec.Struct, frozen=True):
    """A frame item that must be answered with ``error`` (and ``id`` when known)."""

    id: RequestId | None
    error: RpcError


class Frame(msgspec.Struct, frozen=True):
    items: list[Call | Invalid]
    batch: bool


_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_any_decoder = msgspec.json.Decoder()
_reply_decoder = msgspec.json.Decoder(_Reply)
_replies_decoder = msgspec.json.Decoder(list[_Reply])


class _Decoders:
    """One msgspec decoder per name of a table, each made the first time it is needed.

    Making a decoder resolves its type's annotations and compiles its schema: done for
    every method and notification at import, that was most of what a one-shot client
    such as ``duologue list`` spent starting, for the two or three it uses. Only names
    of the table are kept, so a peer naming made-up methods grows nothing.
    """

    def __init__(self, types: dict[str, type]):
        self._types = types
        self._made: dict[str, msgspec.json.Decoder[Any]] = {}

    def get(self, name: str) -> msgspec.json.Decoder[Any] | None:
        """The decoder for ``name``'s type, or None when the table has no ``name``."""
        decoder = self._made.get(name)
        if decoder is None:
            t = self._types.get(name)
            if t is None:
                return None
            decoder = self._made[name] = msgspec.json.Decoder(t)
        return decoder

    def __getitem__(self, name: str) -> msgspec.json.Decoder[Any]:
        decoder = self.get(name)
        if decoder is None:
            raise KeyError(name)
        return decoder


_param_decoders = _Decoders({name: m.params for name, m in METHODS.items()})
_result_decoders = _Decoders({name: m.result for name, m in METHODS.items()})
_notification_decoders = _Decoders({name: n.params for name, n in NOTIFICATIONS.items()})


def parse_frame(data: bytes) -> Frame:
    """Split one frame into calls and invalid items. Never raises.

    The whole frame is checked to be UTF-8 first: msgspec only validates the strings
    it decodes, so a bad byte in a skipped member would pass and one in a params
    string would surface later as an internal error instead of a parse error.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Frame([Invalid(None, RpcError(
            ErrorCode.PARSE_ERROR, f"not valid UTF-8: byte {exc.start} is {data[exc.start]:#04x}"))], False)
    try:
        stripped = data.lstrip()
        if stripped[:1] == b"[":
            raws = _batch_decoder.decode(stripped)
            if not raws:
                return Frame([Invalid(None, _invalid("an empty batch is not a request"))], False)
            return Frame([_parse_item(bytes(r)) for r in raws], True)
        return Frame([_parse_item(stripped)], False)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Frame([Invalid(None, RpcError(ErrorCode.PARSE_ERROR, f"not valid JSON: {exc}"))], False)
    except RecursionError:
        return Frame([Invalid(None, RpcError(ErrorCode.PARSE_ERROR, "JSON nested too deeply"))], False)


def _parse_item(raw: bytes) -> Call | Invalid:
    try:
        env = _envelope_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        try:  # a wrong type is reported before trailing junk: is it JSON at all?
            value = _any_decoder.decode(raw)
        except msgspec.DecodeError as bad:
            return Invalid(None, RpcError(ErrorCode.PARSE_ERROR, f"not valid JSON: {bad}"))
        return Invalid(_id_of(value), _invalid(f"not a JSON-RPC 2.0 request: {exc}"))
    except msgspec.DecodeError as exc:
        return Invalid(None, RpcError(ErrorCode.PARSE_ERROR, f"not valid JSON: {exc}"))
    req_id = None if env.id is msgspec.UNSET else env.id
    if env.jsonrpc != "2.0":
        return Invalid(req_id, _invalid(f'"jsonrpc" must be "2.0", got {env.jsonrpc!r}'))
    if env.id is None:
        return Invalid(None, _invalid('"id" must be a string or an integer, not null'))
    if bytes(env.params)[:1] not in (b"{", b"["):
        return Invalid(req_id, _invalid('"params" must be an object'))
    return Call(req_id, env.method, env.params)


def _id_of(value: Any) -> RequestId | None:
    """The id of an invalid request, when it can be read."""
    if isinstance(value, dict) and isinstance(value.get("id"), (int, str)) and not isinstance(value.get("id"), bool):
        return value["id"]
    return None


def _invalid(message: str) -> RpcError:
    return RpcError(ErrorCode.INVALID_REQUEST, message)


def decode_params(call: Call) -> Any:
    """The call's params as the method's typed Struct, or RpcError."""
    decoder = _param_decoders.get(call.method)
    if decoder is None:
        raise RpcError(
            ErrorCode.METHOD_NOT_FOUND,
            f"no method {call.method!r}; see docs/protocol.md for the method list",
            {"method": call.method},
        )
    raw = bytes(call.params)
    if raw[:1] == b"[":
        raise RpcError(ErrorCode.INVALID_PARAMS, f"{call.method} takes params by name (an object)",
                       {"path": "$"})
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise invalid_params(f"invalid params for {call.method}", exc, raw, decoder.decode) from None


def invalid_params(context: str, error: msgspec.ValidationError, raw: bytes,
                   decode: Callable[[bytes], object]) -> RpcError:
    """INVALID_PARAMS for ``error``, raised by ``decode(raw)``: ``data.path`` is the
    JSONPath of the member at fault, and the message ends with it too."""
    from .json_path import locate  # only a peer's mistake needs it; clients never do

    what, path = locate(error, raw, decode)
    where = "" if path == "$" else f" - at `{path}`"
    return RpcError(ErrorCode.INVALID_PARAMS, f"{context}: {what}{where}", {"path": path})


# --- encoding (daemon side) ------------------------------------------------------------


def encode_result(req_id: RequestId, result: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": req_id, "result": result})


def encode_error(req_id: RequestId | None, error: RpcError) -> bytes:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return _encoder.encode({"jsonrpc": "2.0", "id": req_id, "error": body})


def encode_batch(parts: list[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def encode_notification(method: str, params: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "method": method, "params": params})


def encode_event(event: Any) -> bytes:
    """A session event as the notification frame every subscriber receives."""
    return encode_notification(event_method(event), event)


# --- encoding and decoding (client side) -----------------------------------------------


def encode_request(req_id: RequestId, method: str, params: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})


class Response(msgspec.Struct, frozen=True):
    id: RequestId | None
    result: msgspec.Raw | None
    error: RpcError | None


class Incoming(msgspec.Struct, frozen=True):
    """A notification as a client receives it, params still raw."""

    method: str
    params: msgspec.Raw


def parse_replies(data: bytes) -> list[Response | Incoming]:
    """Decode what a daemon sent: responses (single or batch) and notifications.

    A batch is decoded in one call into its members' envelopes, whose params stay raw
    slices of the frame until :func:`decode_notification` types them: a replay's
    frames hold hundreds of notifications each, so a call per member would be most
    of what a client spends on a replay."""
    stripped = data.lstrip()
    replies = _replies_decoder.decode(stripped) if stripped[:1] == b"[" else [_reply_decoder.decode(stripped)]
    out: list[Response | Incoming] = []
    for reply in replies:
        if reply.method is not msgspec.UNSET:
            params = reply.params if reply.params is not msgspec.UNSET else msgspec.Raw(b"{}")
            out.append(Incoming(reply.method, params))
            continue
        req_id = None if reply.id is msgspec.UNSET else reply.id
        if reply.error is not msgspec.UNSET:
            err = reply.error
            data_ = err.data if isinstance(err.data, dict) else None
            out.append(Response(req_id, None, RpcError(err.code, err.message, data_)))
        else:
            result = reply.result if reply.result is not msgspec.UNSET else msgspec.Raw(b"null")
            out.append(Response(req_id, result, None))
    return out


def decode_result(method: str, raw: msgspec.Raw) -> Any:
    return _result_decoders[method].decode(bytes(raw))


def decode_notification(note: Incoming) -> Any:
    """The notification's typed params, or None for a method this client does not know."""
    decoder = _notification_decoders.get(note.method)
    return None if decoder is None else decoder.decode(note.params)
