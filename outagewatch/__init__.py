"""outagewatch: real-time event monitoring and outage detection for live-audio rooms."""

__version__ = "0.1.0"
