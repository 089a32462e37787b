"""Timing on a target's devices: protocol, devices and hardware model, cell labels, parts, networks."""
