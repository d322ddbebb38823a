"""Static pages the collector serves (no build step): the fleet status page."""
