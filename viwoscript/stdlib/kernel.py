"""placeholder: filled in by its issue"""
OPCODES: list = []
