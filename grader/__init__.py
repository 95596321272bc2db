"""backprop-drill: practise the backward pass by hand, and grade it link by link."""

__version__ = "0.1.0"
