"""Diplofeed's HTTP service and command line: the outermost layer, the composition root."""
