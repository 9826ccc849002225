"""What the command line (``viwoscript.cli``) and the REPL (``viwoscript.repl``) share: the one script loader
(``loader``), printing results and events (``console``), the rich views of opcodes, capabilities and
configuration (``describe``) and the text-form lexer (``lexer``). It imports neither face."""
