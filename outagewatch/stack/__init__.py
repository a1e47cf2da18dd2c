"""outagewatch/stack"""
