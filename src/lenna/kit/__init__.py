"""A measurement kit for a device the pipeline cannot reach (a phone, an FPGA board): the
NAS-Bench-201 architectures worth timing there (`lenna.kit.architectures`), their benchmark
networks exported with a manifest (`lenna.kit.export`), and the standalone script that times them
on the device and writes a device table (`lenna.kit.timer`, the kit's time_networks.py)."""
