"""Adapters: the only modules that touch files, the network or the kubernetes client."""
