"""The ViwoScript standard library written in ViwoScript (shipped as viwoscript.vlib)."""
