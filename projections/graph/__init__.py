"""The contact graph kept by the contacts projection: one row per live interaction and pair of
its participants, and each actor's span of years, written with each batch (``writer``, from
``deltas``); counts per pair, kind and year summed a page at a time when read (``queries``).
Tables and statements are in ``schema``."""

from projections.graph.queries import GraphEdge, GraphKey, GraphOrder, contact_graph, graph_page
from projections.graph.writer import GraphBatch, GraphWriter

__all__ = (
    "GraphBatch",
    "GraphEdge",
    "GraphKey",
    "GraphOrder",
    "GraphWriter",
    "contact_graph",
    "graph_page",
)
