"""Read models built from the event log. Imports only from ``events``."""
