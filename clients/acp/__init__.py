"""``duologue acp``: every Agent Client Protocol editor as a duologue client.

- :mod:`.updates` is pure: duologue records and events as ACP session updates, ACP
  prompts as a ``session/send``, the model selector as config options.
- :mod:`.view` is one open session: each daemon event as its updates, and the answer
  of the client's running prompt once its turn has ended.
- :mod:`.agent` is the ACP agent: its methods relayed to the daemon through the
  client library's bridge, the daemon's events relayed back in seq order.
- :mod:`.stdio` serves it on stdin/stdout, answering malformed frames with errors.

The ``acp`` SDK (PyPI ``agent-client-protocol``) supplies the schema types and the
JSON-RPC connection; only this package imports it.
"""
