"""The special forms: variables, control flow, functions and logic.

Each form is declared once (``@form``, an :class:`~viwoscript.opcodes.OpSpec` like any opcode) with its
walk rule (the function the tree-walker calls) and, where it has one, its emit rule (the code the compiled
runner generates for it) side by side. The standard library lists these declarations in its namespaces
(``std.*``, ``and``/``or``/``not``); runners find the rules on the declarations, never by name.
"""
