"""The diplomatic domain: actors, coded interactions with uncertain dates and sources, meeting
lifecycles, declarations and corrections; the rules that turn commands into events."""
