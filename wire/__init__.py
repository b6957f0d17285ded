"""What the hub and its player stations share, and nothing of either.

- :mod:`wire.enums`, :mod:`wire.messages`, :mod:`wire.codec`: protocol v1, its closed sets of
  names, every message with typed contents, and a codec that never raises;
- :mod:`wire.plain`: the tutorial's plain-text protocol;
- :mod:`wire.discovery`: how a hub is announced on the LAN and found there;
- :mod:`wire.tls`, :mod:`wire.configfile`, :mod:`wire.errors`: wss:// contexts, typed TOML config
  files, and the one exception root both sides raise from.

Nothing here imports the hub's servers, storage or pages, so a player station loads only what it
needs. docs/protocol.md is the human-readable contract.
"""
