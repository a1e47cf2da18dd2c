"""The public status page: `outagewatch status-page`."""
