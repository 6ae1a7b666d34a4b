"""Strawberry types: thin views over store rows."""
