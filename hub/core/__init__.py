"""The hub's sans-I/O core: connections, clocks, presses, the game and its audiences, with
``now`` passed in and outputs handed back (see :mod:`hub.core.machine`)."""
