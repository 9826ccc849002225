"""placeholder"""
OPCODES: list = []
