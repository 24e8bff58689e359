"""edgec: trained networks to bare-metal microcontroller firmware."""
__version__ = "0.1.0"
