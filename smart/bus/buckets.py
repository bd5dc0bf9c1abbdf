"""Reading what a KV bucket holds now, without nats-py's ``keys()`` race.

``KeyValue.keys()`` lists through an ordered watch and stops at the first
"nothing pending" signal; under load that signal can come while entries are
still in flight to the client, and the list comes back short (seen as a
contract retired from three stations of four). The hub's deploy and retire
decisions rest on this list, so it is read from the bucket's stream instead:
the server's per-subject state names every key with a message, and a direct
get of each says whether it is live or deleted.
"""

from __future__ import annotations

import nats.js.errors
from nats.js.kv import KeyValue


async def live_entries(kv: KeyValue, pattern: str = ">") -> dict[str, bytes]:
    """Key → value of every live key matching the NATS subject ``pattern`` (``*``/``>`` wildcards)."""
    # nats-py keeps the bucket's stream, API context and subject prefix private; they are stable
    # across its releases and this is the one place that reads them.
    prefix: str = kv._pre
    info = await kv._js.stream_info(kv._stream, subjects_filter=prefix + pattern)
    found: dict[str, bytes] = {}
    for subject in sorted((info.state.subjects or {}) if info.state else {}):
        name = subject[len(prefix) :]
        try:
            entry = await kv.get(name)
        except nats.js.errors.KeyNotFoundError:  # deleted or purged: its marker is the last message
            continue
        if entry.value is not None:
            found[name] = entry.value
    return found
