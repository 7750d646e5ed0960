//! hydrant-sinks: delivery destinations. Not built yet: see the delivery issue.
