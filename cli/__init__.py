"""The `factflow` command-line interface: one click group per noun, thin over plain functions."""
