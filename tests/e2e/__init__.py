"""Browser tests of the pages the hub serves."""
