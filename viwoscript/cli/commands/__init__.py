"""One module per ``viwo`` command; each registers itself on the group in ``viwoscript.cli.app``."""
