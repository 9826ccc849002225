"""Runners: how a parsed program runs.

``tree.py`` walks the tree (the reference); ``compiled.py`` turns hot trees into Python functions. Both
sit behind one protocol and the Runtime picks one. The special forms (``forms/``) are shared: each has
its walk rule and its emit rule side by side.
"""
