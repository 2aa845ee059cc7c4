"""The contact graph pre-aggregated by the contacts projection: counts per pair, kind and year
kept as the projection writes each batch (``writer``, from ``deltas``), read a page at a time
(``queries``). Tables and statements are in ``schema``."""

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
