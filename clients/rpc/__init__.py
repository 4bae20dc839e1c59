"""The client library: what every duologue client shares, and nothing app-specific.

- :mod:`.client` is the asyncio JSON-RPC client over ZeroMQ (``AsyncClient``);
- :mod:`.sync_client` the blocking one for scripts and the CLI, with no event loop;
- :mod:`.calls` the protocol's methods as typed coroutines, written once for both;
- :mod:`.connection` what both are made with: settings, the DEALER, the drop markers;
- :mod:`.session_events` drives the sequence rules of docs/protocol.md section 4
  (from ``duologue.protocol.subscriptions``) over a live connection;
- :mod:`.bridge` is a relay's link to the daemon (the language server's and the ACP
  agent's): calls that wait out a restart, reattaching, starting a daemon;
- :mod:`.launcher` finds or starts the daemon;
- :mod:`.relay_log` where the stdio relays log (never their stdout);
- :mod:`.project` names the project a working directory belongs to.

It depends on ``duologue.protocol`` only; the apps (the CLI, the chat, the language
server, the ACP agent, the importers) depend on it and never the other way round.
"""
