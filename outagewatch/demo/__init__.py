"""`outagewatch demo`: the whole pipeline on the real local stack, in one command."""
