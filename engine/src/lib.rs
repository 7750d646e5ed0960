//! hydrant-engine: the daemon `hydrantd`. Not built yet: see the API issue.
